// Package serverkit lets waitron's own packages outside the root (the
// fasthttp adapter's) return the root's *waitron.Server for an engine
// server: the root package sets Wrap as it initialises, before any
// package importing it runs.
package serverkit

import "github.com/waitron/waitron/internal/engine"

// Wrap returns a *waitron.Server for e.
var Wrap func(e *engine.Server) any
