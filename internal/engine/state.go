package engine

// connState is where a connection is, as one value the loop owns: its
// life (open, closing, lingering, hijacked), its place under
// connection_limit (holding a slot, parked waiting for one, refused),
// whether a request is with a worker, and whether the client half-closed.
// Every change goes through the transitions below, each of which names the
// step it takes; the rest of the engine only reads.
type connState struct {
	life life
	slot slot
	busy bool // a request (or burst) is with a worker and its response is not complete
	eof  bool // the client half-closed: gnet let go; output goes through the fallback writer, input comes from saved
}

type life uint8

const (
	lifeOpen      life = iota // requests are read and served
	lifeClosing               // no further request is read; the connection closes once output drains
	lifeLingering             // our write side is shut down; input is discarded until the close
	lifeHijacked              // the handler took the socket; gnet let it go
)

type slot uint8

const (
	slotHeld    slot = iota // counted against connection_limit
	slotParked              // over connection_limit: not read until a slot frees
	slotRefused             // over connection_limit and the wait: answered 503, holds no slot
)

var (
	lifeNames = [...]string{"open", "closing", "lingering", "hijacked"}
	slotNames = [...]string{"held", "parked", "refused"}
)

// String describes the state for logs, e.g. "closing/held/busy".
func (st connState) String() string {
	s := lifeNames[st.life] + "/" + slotNames[st.slot]
	if st.busy {
		s += "/busy"
	}
	if st.eof {
		s += "/half-closed"
	}
	return s
}

// closing reports whether no further request is read.
func (st *connState) closing() bool { return st.life != lifeOpen }

func (st *connState) lingering() bool { return st.life == lifeLingering }
func (st *connState) hijacked() bool  { return st.life == lifeHijacked }
func (st *connState) parked() bool    { return st.slot == slotParked }
func (st *connState) refused() bool   { return st.slot == slotRefused }

// startServing: a request goes to a worker.
func (st *connState) startServing() { st.busy = true }

// finishServing: its response is complete (or its handler took the
// connection).
func (st *connState) finishServing() { st.busy = false }

// startClosing: read no further request. It reports false when the
// connection was already closing (or further on).
func (st *connState) startClosing() bool {
	if st.life != lifeOpen {
		return false
	}
	st.life = lifeClosing
	return true
}

// linger: the output has drained and our write side is shut down.
func (st *connState) linger() { st.life = lifeLingering }

// hijack: the handler took the socket; the request is over for us.
func (st *connState) hijack() { st.life, st.busy = lifeHijacked, false }

// halfClose: the client shut down its sending side while a request runs.
func (st *connState) halfClose() { st.eof = true }

// park: over connection_limit; wait unread for a slot.
func (st *connState) park() { st.slot = slotParked }

// unpark: a slot freed and is this connection's.
func (st *connState) unpark() { st.slot = slotHeld }

// refuse: no slot, now or after waiting; the 503 follows.
func (st *connState) refuse() { st.slot = slotRefused }
