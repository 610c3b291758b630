package mcp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// ctPipePeer connects an IOTransport to in-memory pipes and returns the far
// ends: what the peer writes, and a line reader of what the connection
// writes.
func ctPipePeer(t *testing.T, maxSize int, logs io.Writer) (Connection, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	if logs == nil {
		logs = io.Discard
	}
	conn, err := (&IOTransport{Reader: inR, Writer: outW, MaxMessageSize: maxSize, Logger: slog.New(slog.NewTextHandler(logs, nil))}).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); inW.Close(); outR.Close() })
	return conn, inW, bufio.NewReader(outR)
}

func TestIOTransportRoundTrip(t *testing.T) {
	conn, peerW, peerR := ctPipePeer(t, 0, nil)
	ctx := context.Background()
	go io.WriteString(peerW, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n\n  \n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
	m := ctReadMsg(t, conn).(*jsonrpc.Request)
	if m.Method != "ping" || m.ID != jsonrpc.Int64ID(1) {
		t.Fatalf("got %+v", m)
	}
	if m := ctReadMsg(t, conn).(*jsonrpc.Request); m.Method != NotificationInitialized {
		t.Fatalf("got %+v", m)
	}
	// Formatted raw JSON is compacted: a message is one line.
	errc := make(chan error, 1)
	go func() {
		errc <- conn.Write(ctx, &jsonrpc.Response{ID: jsonrpc.Int64ID(1), Result: []byte("{\n  \"a\": \"x\\ny\",\r\n  \"b\": [1,\n 2]\n}")})
	}()
	line, err := peerR.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"jsonrpc":"2.0","id":1,"result":{"a":"x\ny","b":[1,2]}}` + "\n"; line != want {
		t.Fatalf("wrote %q, want %q", line, want)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// The peer closing its output ends the connection with EOF.
	peerW.Close()
	if _, err := conn.Read(ctx); err != io.EOF {
		t.Fatalf("Read at end = %v, want io.EOF", err)
	}
}

func TestIOTransportBadLines(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		wantResp string // the error response written, "" for none
		wantLog  string
	}{
		{"not json", `hello`, "", "invalid message"},
		{"bad request with id", `{"jsonrpc":"1.0","id":7,"method":"x"}`, `{"jsonrpc":"2.0","id":7,"error":{"code":-32600,`, "invalid message"},
		{"duplicate key", `{"jsonrpc":"2.0","id":"a","id":"a","method":"x"}`, `{"jsonrpc":"2.0","id":"a","error":{"code":-32700,`, "invalid message"},
		{"truncated", `{"jsonrpc":"2.0","id":3,"method":"x"`, `{"jsonrpc":"2.0","id":3,"error":{"code":-32700,`, "invalid message"},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"x"}]`, "", "batches"},
		{"bad response", `{"jsonrpc":"2.0","id":5,"result":1,"error":{"code":1,"message":"m"}}`, "", "invalid message"},
		{"too large", `{"jsonrpc":"2.0","id":9,"method":"x","params":{"p":"` + strings.Repeat("x", 300) + `"}}`, `{"jsonrpc":"2.0","id":9,"error":{"code":-32600,"message":"message exceeds the limit of 200 bytes"}}`, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs ctSyncBuffer
			conn, peerW, peerR := ctPipePeer(t, 200, &logs)
			go io.WriteString(peerW, tt.line+"\n"+`{"jsonrpc":"2.0","id":100,"method":"after"}`+"\n")
			got := make(chan string, 1)
			go func() {
				l, _ := peerR.ReadString('\n')
				got <- l
			}()
			// The bad line is skipped: the next message comes through.
			if m := ctReadMsg(t, conn).(*jsonrpc.Request); m.Method != "after" {
				t.Fatalf("got %+v", m)
			}
			if tt.wantResp != "" {
				select {
				case l := <-got:
					if !strings.HasPrefix(l, tt.wantResp) {
						t.Fatalf("error response %q, want prefix %q", l, tt.wantResp)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no error response")
				}
			} else {
				select {
				case l := <-got:
					t.Fatalf("unexpected output %q", l)
				case <-time.After(20 * time.Millisecond):
				}
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q does not mention %q", logs.String(), tt.wantLog)
			}
		})
	}
}

func TestIOTransportClose(t *testing.T) {
	conn, _, _ := ctPipePeer(t, 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := conn.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := conn.Read(context.Background())
		done <- err
	}()
	conn.Close()
	if err := <-done; !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
	if err := conn.Write(context.Background(), ctReq(1, "x")); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	conn.Close()
	if _, err := (&IOTransport{}).Connect(context.Background()); err == nil {
		t.Fatal("Connect without reader and writer succeeded")
	}
}

func TestReadLine(t *testing.T) {
	in := "a\r\n" + strings.Repeat("b", 100) + "\nccc"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	for _, want := range []struct {
		line     string
		tooLarge bool
		err      error
	}{{"a", false, nil}, {"b", true, nil}, {"ccc", false, io.EOF}} {
		line, tooLarge, err := readLine(br, 50)
		if tooLarge {
			// Only the start of a long line is kept.
			if len(line) < 50 || len(line) > 1024 || strings.Trim(string(line), "b") != "" {
				t.Errorf("long line kept as %q", line)
			}
			line = line[:1]
		}
		if string(line) != want.line || tooLarge != want.tooLarge || err != want.err {
			t.Errorf("readLine = %q, %v, %v; want %q, %v, %v", line, tooLarge, err, want.line, want.tooLarge, want.err)
		}
	}
}

// FuzzPeekRequestID checks that the lenient id reader never panics and
// agrees with the strict decoder on every valid request.
func FuzzPeekRequestID(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"x"}`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"x","id":"a\u0062"}`))
	f.Add([]byte(`{"id":"a","id":2`))
	f.Add([]byte("{\"id\":\"\xff\",\"method\":1}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, isRequest := peekRequestID(b)
		msg, err := jsonrpc.DecodeMessage(b)
		if err != nil {
			return
		}
		if r, ok := msg.(*jsonrpc.Request); ok {
			if !isRequest || id != r.ID {
				t.Fatalf("peekRequestID = %v, %v; the decoder read request id %v", id, isRequest, r.ID)
			}
		}
	})
}

// ctSyncBuffer is a bytes.Buffer safe for concurrent use (loggers write from
// other goroutines).
type ctSyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *ctSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *ctSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// BenchmarkIOTransportRoundTrip measures a request written on one IOTransport
// connection and read on another, and the response going back.
func BenchmarkIOTransportRoundTrip(b *testing.B) {
	aR, bW := io.Pipe()
	bR, aW := io.Pipe()
	ctx := context.Background()
	a, _ := (&IOTransport{Reader: aR, Writer: aW}).Connect(ctx)
	peer, _ := (&IOTransport{Reader: bR, Writer: bW}).Connect(ctx)
	defer a.Close()
	defer peer.Close()
	req := &jsonrpc.Request{ID: jsonrpc.Int64ID(1), Method: MethodToolsCall, Params: []byte(`{"name":"echo","arguments":{"msg":"hello"}}`)}
	resp := &jsonrpc.Response{ID: jsonrpc.Int64ID(1), Result: []byte(`{"content":[{"type":"text","text":"hello"}]}`)}
	go func() {
		for {
			if _, err := peer.Read(ctx); err != nil {
				return
			}
			if peer.Write(ctx, resp) != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Write(ctx, req); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
