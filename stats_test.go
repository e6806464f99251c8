package waitron

import (
	"reflect"
	"testing"

	"github.com/waitron/waitron/internal/engine"
)

// TestStatsMirrorsEngine: the root's Stats has every field of the engine's
// snapshot, filled, and a CloseReason for each of the engine's.
func TestStatsMirrorsEngine(t *testing.T) {
	et, rt := reflect.TypeOf(engine.Stats{}), reflect.TypeOf(Stats{})
	if et.NumField() != rt.NumField() {
		t.Fatalf("engine.Stats has %d fields, waitron.Stats %d", et.NumField(), rt.NumField())
	}
	var st engine.Stats
	ev := reflect.ValueOf(&st).Elem()
	for i := range et.NumField() {
		f := et.Field(i)
		if _, ok := rt.FieldByName(f.Name); !ok {
			t.Errorf("waitron.Stats has no %s", f.Name)
		}
		switch v := ev.Field(i); v.Kind() {
		case reflect.Int, reflect.Int64:
			v.SetInt(int64(i + 1))
		case reflect.Uint64:
			v.SetUint(uint64(i + 1))
		case reflect.Bool:
			v.SetBool(true)
		}
	}
	st.Closed = map[engine.CloseReason]uint64{}
	for _, r := range engine.CloseReasons() {
		st.Closed[r] = uint64(r) + 1
	}
	st.Requests = []engine.RequestCount{{Method: "GET", StatusClass: "2xx", Count: 3}}
	got := statsOf(st)
	gv := reflect.ValueOf(got)
	for i := range et.NumField() {
		name := et.Field(i).Name
		e, g := ev.Field(i), gv.FieldByName(name)
		switch e.Kind() {
		case reflect.Map:
			if e.Len() != g.Len() {
				t.Errorf("%s: %d entries, want %d", name, g.Len(), e.Len())
			}
		case reflect.Slice:
			if e.Len() != g.Len() {
				t.Errorf("%s: %d entries, want %d", name, g.Len(), e.Len())
			}
		default:
			if e.Interface() != g.Interface() {
				t.Errorf("%s: %v, want %v", name, g.Interface(), e.Interface())
			}
		}
	}
	for _, r := range engine.CloseReasons() {
		if got.Closed[CloseReason(r)] != uint64(r)+1 || CloseReason(r).String() != r.String() {
			t.Errorf("close reason %s not carried over", r)
		}
	}
}

// TestCloseReasonsMatchEngine: each root constant is the engine's.
func TestCloseReasonsMatchEngine(t *testing.T) {
	pairs := []struct {
		root CloseReason
		eng  engine.CloseReason
	}{
		{CloseClientClosed, engine.CloseClientClosed},
		{CloseClientReset, engine.CloseClientReset},
		{CloseClientHalfClosed, engine.CloseClientHalfClosed},
		{CloseRequested, engine.CloseRequested},
		{CloseBadRequest, engine.CloseBadRequest},
		{CloseIdle, engine.CloseIdle},
		{CloseHeaderTimeout, engine.CloseHeaderTimeout},
		{CloseBodyTimeout, engine.CloseBodyTimeout},
		{CloseSendTimeout, engine.CloseSendTimeout},
		{ClosePipelineOverflow, engine.ClosePipelineOverflow},
		{CloseOverload, engine.CloseOverload},
		{CloseShutdown, engine.CloseShutdown},
		{CloseHijacked, engine.CloseHijacked},
		{CloseProxyProtocol, engine.CloseProxyProtocol},
		{CloseInternalError, engine.CloseInternalError},
		{CloseSpoolFull, engine.CloseSpoolFull},
		{CloseServerRestart, engine.CloseServerRestart},
		{CloseTLSHandshake, engine.CloseTLSHandshake},
		{CloseTLSHandshakeTimeout, engine.CloseTLSHandshakeTimeout},
		{CloseTLSError, engine.CloseTLSError},
		{CloseTLSCloseNotify, engine.CloseTLSCloseNotify},
		{CloseTLSRenegotiation, engine.CloseTLSRenegotiation},
	}
	if len(pairs) != len(engine.CloseReasons()) {
		t.Fatalf("%d root close reasons, the engine has %d", len(pairs), len(engine.CloseReasons()))
	}
	for _, p := range pairs {
		if uint8(p.root) != uint8(p.eng) {
			t.Errorf("%s: root %d, engine %d", p.eng, p.root, p.eng)
		}
	}
}
