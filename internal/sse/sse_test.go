package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

type ev struct {
	Type, ID, Data string
	Retry          time.Duration
}

func readAll(t *testing.T, r io.Reader, max int) ([]ev, error) {
	t.Helper()
	rd := NewReader(r, max)
	var out []ev
	for i := 0; i < 1000; i++ {
		e, err := rd.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev{e.Type, e.ID, string(e.Data), e.Retry})
	}
	t.Fatal("too many events")
	return nil, nil
}

func TestReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ev
	}{
		{"simple", "data: hello\n\n", []ev{{Data: "hello"}}},
		{"no space", "data:hello\n\n", []ev{{Data: "hello"}}},
		{"two spaces", "data:  hello\n\n", []ev{{Data: " hello"}}},
		{"multi data", "data: a\ndata: b\n\n", []ev{{Data: "a\nb"}}},
		{"crlf", "data: a\r\ndata: b\r\n\r\n", []ev{{Data: "a\nb"}}},
		{"cr", "data: a\rdata: b\r\r", []ev{{Data: "a\nb"}}},
		{"mixed", "event: x\r\nid: 1\rdata: d\n\n", []ev{{Type: "x", ID: "1", Data: "d"}}},
		{"comment", ": keepalive\n\n: x\ndata: y\n\n", []ev{{Data: "y"}}},
		{"priming", "id: event-1\nretry: 500\ndata: \n\n", []ev{{ID: "event-1", Data: "", Retry: 500 * time.Millisecond}}},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []ev{{ID: "7", Data: "a"}, {ID: "7", Data: "b"}}},
		{"id reset", "id: 7\ndata: a\n\nid\ndata: b\n\n", []ev{{ID: "7", Data: "a"}, {ID: "", Data: "b"}}},
		{"id with NUL ignored", "id: 1\n\nid: a\x00b\ndata: x\n\n", []ev{{ID: "1"}, {ID: "1", Data: "x"}}},
		{"bad retry ignored", "retry: 12a\ndata: x\n\n", []ev{{Data: "x"}}},
		{"unknown field", "foo: bar\ndata: x\n\n", []ev{{Data: "x"}}},
		{"field no colon", "data\n\n", []ev{{Data: ""}}},
		{"unterminated event dropped", "data: a\n\ndata: b\n", []ev{{Data: "a"}}},
		{"unterminated line dropped", "data: a\n\ndata: b", []ev{{Data: "a"}}},
		{"bom", "\xEF\xBB\xBFdata: a\n\n", []ev{{Data: "a"}}},
		{"blank lines", "\n\n\ndata: a\n\n\n\n", []ev{{Data: "a"}}},
		{"json", "event: message\nid: s1-2\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n", []ev{{Type: "message", ID: "s1-2", Data: `{"jsonrpc":"2.0","id":1,"result":{}}`}}},
	}
	for _, tt := range tests {
		for _, mode := range []string{"whole", "onebyte"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				if mode == "onebyte" {
					r = iotest.OneByteReader(r)
				}
				got, err := readAll(t, r, 0)
				if err != io.EOF {
					t.Fatalf("err = %v, want EOF", err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %d events %+v, want %+v", len(got), got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("event %d = %+v, want %+v", i, got[i], tt.want[i])
					}
				}
			})
		}
	}
}

func TestReaderStateAccessors(t *testing.T) {
	rd := NewReader(strings.NewReader("id: a\ndata: x\n\nretry: 250\nid: b\n"), 0)
	if _, ok := rd.Retry(); ok {
		t.Fatal("Retry set before any field")
	}
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if got := rd.LastEventID(); got != "a" {
		t.Fatalf("LastEventID = %q, want a", got)
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("err = %v, want EOF", err)
	}
	// The retry field applies at once; the id of an unfinished event does
	// not become the last event id.
	if got := rd.LastEventID(); got != "a" {
		t.Fatalf("LastEventID after unfinished event = %q, want a", got)
	}
	if d, ok := rd.Retry(); !ok || d != 250*time.Millisecond {
		t.Fatalf("Retry = %v, %v; want 250ms", d, ok)
	}
}

func TestReaderLimits(t *testing.T) {
	for _, in := range []string{
		"data: " + strings.Repeat("x", 100) + "\n\n",
		strings.Repeat("data: 0123456789\n", 20) + "\n",
		": " + strings.Repeat("c", 100) + "\n\n",
	} {
		_, err := readAll(t, strings.NewReader(in), 64)
		if !errors.Is(err, ErrEventTooLarge) {
			t.Errorf("err = %v, want ErrEventTooLarge", err)
		}
	}
	got, err := readAll(t, strings.NewReader("data: "+strings.Repeat("x", 50)+"\n\n"), 64)
	if err != io.EOF || len(got) != 1 {
		t.Fatalf("under the limit: %v %v", got, err)
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	got, err := readAll(t, r, 0)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Data: []byte("x")}, "data: x\n\n"},
		{Event{}, "data:\n\n"},
		{Event{ID: "e1", HasRetry: true, Retry: 500 * time.Millisecond}, "id: e1\nretry: 500\ndata:\n\n"},
		{Event{Type: "message", ID: "1", Data: []byte("a\nb\r\nc\rd")}, "event: message\nid: 1\ndata: a\ndata: b\ndata: c\ndata: d\n\n"},
		{Event{Data: []byte("a\n")}, "data: a\ndata:\n\n"},
	}
	for _, tt := range tests {
		b, err := AppendEvent([]byte("<"), tt.e)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b[1:]); got != tt.want {
			t.Errorf("AppendEvent(%+v) = %q, want %q", tt.e, got, tt.want)
		}
	}
	for _, e := range []Event{{Type: "a\nb"}, {ID: "a\rb"}, {ID: "a\x00"}} {
		if b, err := AppendEvent([]byte("x"), e); err == nil || string(b) != "x" {
			t.Errorf("AppendEvent(%+v) = %q, %v; want error and dst unchanged", e, b, err)
		}
	}
	if got := string(AppendComment(nil, "ping\nx")); got != ": ping x\n\n" {
		t.Errorf("AppendComment = %q", got)
	}
	var buf bytes.Buffer
	if err := WriteEvent(&buf, Event{ID: "9", Data: []byte("{}")}); err != nil || buf.String() != "id: 9\ndata: {}\n\n" {
		t.Errorf("WriteEvent = %q, %v", buf.String(), err)
	}
}

func TestRoundTrip(t *testing.T) {
	in := []Event{
		{Type: "message", ID: "1", Data: []byte(`{"a":1}`)},
		{ID: "2", Data: []byte("multi\nline\n\ntext"), Retry: time.Second, HasRetry: true},
		{ID: "3", Data: []byte("")},
	}
	var b []byte
	for _, e := range in {
		var err error
		if b, err = AppendEvent(b, e); err != nil {
			t.Fatal(err)
		}
	}
	rd := NewReader(bytes.NewReader(b), 0)
	for _, want := range in {
		got, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != want.Type || got.ID != want.ID || !bytes.Equal(got.Data, want.Data) || got.Retry != want.Retry {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkReader(b *testing.B) {
	var stream []byte
	for i := 0; i < 100; i++ {
		stream, _ = AppendEvent(stream, Event{Type: "message", ID: "s-1", Data: []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello world"}]}}`)})
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	r := bytes.NewReader(stream)
	for b.Loop() {
		r.Reset(stream)
		rd := NewReader(r, 0)
		for {
			if _, err := rd.Next(); err != nil {
				break
			}
		}
	}
}
