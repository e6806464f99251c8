// Package tests runs waitron under the libraries and frameworks its users
// bring (gin, Fiber, gorilla/websocket, coder/websocket, Prometheus's own
// parser), in a module of its own so that the library's go.mod lists only
// what the library imports.
package tests
