package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/waitron/waitron/internal/testutil"
)

// echoService answers UnaryCall with its payload and FullDuplexCall with
// each message's payload, as it comes.
type echoService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (echoService) UnaryCall(_ context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Payload: in.GetPayload()}, nil
}

func (echoService) FullDuplexCall(stream testgrpc.TestService_FullDuplexCallServer) error {
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: in.GetPayload()}); err != nil {
			return err
		}
	}
}

// TestGRPCThroughServeHTTP: a grpc-go server mounted as an http.Handler
// (grpc.Server's ServeHTTP) answers a grpc-go client's unary call and
// bidi stream over h2 (TLS) and h2c (prior knowledge), on waitron as on
// net/http.
func TestGRPCThroughServeHTTP(t *testing.T) {
	certs := testutil.NewCerts(t)
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, echoService{})
	w, stdPlain, stdTLS := h2Servers(t, gs, certs)
	for _, c := range []struct {
		name, addr string
		secure     bool
	}{
		{"waitron/h2", w.Addrs()[1].String(), true}, {"waitron/h2c", w.addr, false},
		{"net/http/h2", stdTLS, true}, {"net/http/h2c", stdPlain, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			creds := insecure.NewCredentials()
			if c.secure {
				creds = credentials.NewTLS(certs.ClientConfig())
			}
			cc, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			client := testgrpc.NewTestServiceClient(cc)
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("unary")}})
			if err != nil || string(resp.GetPayload().GetBody()) != "unary" {
				t.Fatalf("unary: %v, %v", resp, err)
			}
			stream, err := client.FullDuplexCall(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				msg := fmt.Sprintf("message %d", i)
				if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte(msg)}}); err != nil {
					t.Fatal(err)
				}
				got, err := stream.Recv()
				if err != nil || string(got.GetPayload().GetBody()) != msg {
					t.Fatalf("bidi message %d: %v, %v", i, got, err)
				}
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("after CloseSend: %v, want io.EOF", err)
			}
		})
	}
}

// TestGRPCBidiStreamsFewThreads: with threads=1, three bidi streams open
// at once (each flushing while its request goes on) leave the worker to a
// unary call: full-duplex streams leave the count of threads, as hijacked
// WebSockets do.
func TestGRPCBidiStreamsFewThreads(t *testing.T) {
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, echoService{})
	w := start(t, gs, "threads", "1")
	cc, err := grpc.NewClient(w.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := testgrpc.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var streams []testgrpc.TestService_FullDuplexCallClient
	for i := range 3 {
		stream, err := client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("stream %d", i)
		if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte(msg)}}); err != nil {
			t.Fatal(err)
		}
		if got, err := stream.Recv(); err != nil || string(got.GetPayload().GetBody()) != msg {
			t.Fatalf("%s: %v, %v", msg, got, err)
		}
		streams = append(streams, stream)
	}
	resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("unary")}})
	if err != nil || string(resp.GetPayload().GetBody()) != "unary" {
		t.Fatalf("unary call beside three open streams: %v, %v", resp, err)
	}
	for _, s := range streams {
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after CloseSend: %v", err)
		}
	}
}
