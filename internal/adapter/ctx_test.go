package adapter

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRequestContext: the request context ends when the handler returns
// (Canceled) or with the connection (its error and cause), contexts
// derived from it follow it, and it carries the Info.
func TestRequestContext(t *testing.T) {
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not end", what)
		}
	}

	// Ended by the handler's return, Done asked first or afterwards.
	conn, stopConn := context.WithCancelCause(context.Background())
	defer stopConn(nil)
	rc := &reqCtx{parent: conn, info: Info{Scheme: "https"}}
	child, cancelChild := context.WithTimeout(rc, time.Hour)
	defer cancelChild()
	done := rc.Done()
	if rc.Err() != nil {
		t.Fatal("a live request context has an error")
	}
	rc.cancel(context.Canceled)
	wait("the request context", done)
	wait("a context derived from it", child.Done())
	if !errors.Is(rc.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("errors: %v, %v", rc.Err(), child.Err())
	}
	late := &reqCtx{parent: conn}
	late.cancel(context.Canceled)
	wait("Done asked after the end", late.Done())
	if conn.Err() != nil {
		t.Fatal("ending a request ended the connection's context")
	}
	if i, ok := rc.Value(infoKey{}).(*Info); !ok || i.Scheme != "https" {
		t.Fatalf("Info: %v", rc.Value(infoKey{}))
	}

	// Ended by the connection: error and cause come from it.
	gone := errors.New("client closed the connection")
	rc = &reqCtx{parent: conn}
	grandchild, cancelGrandchild := context.WithCancel(rc)
	defer cancelGrandchild()
	ran := make(chan struct{})
	stop := context.AfterFunc(rc, func() { close(ran) })
	notRun := context.AfterFunc(rc, func() { t.Error("a stopped AfterFunc ran") })
	if !notRun() {
		t.Fatal("stopping an AfterFunc before the end reported false")
	}
	stopConn(gone)
	wait("the request context after the connection", rc.Done())
	wait("a context derived from it", grandchild.Done())
	wait("an AfterFunc", ran)
	if stop() {
		t.Fatal("stopping an AfterFunc that ran reported true")
	}
	if !errors.Is(rc.Err(), context.Canceled) || context.Cause(rc) != gone {
		t.Fatalf("after the connection ended: err %v, cause %v", rc.Err(), context.Cause(rc))
	}
}
