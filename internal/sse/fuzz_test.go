package sse

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzReader checks that the reader never panics or loops on any input, that
// it sees the same events whether the input arrives at once or byte by byte,
// and that every event it returns survives a write and re-read.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"data: hello\n\n",
		"id: event-1\nretry: 500\ndata: \n\n",
		"event: message\r\nid: 1\r\ndata: {\"jsonrpc\":\"2.0\"}\r\n\r\n",
		"data: a\rdata: b\r\r",
		": comment\n\ndata\n\nid\x00\n\n",
		"\xEF\xBB\xBFretry: 99999999999999\ndata: x\n",
		"data: " + string(bytes.Repeat([]byte("y"), 300)) + "\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(r io.Reader) ([]Event, error) {
			rd := NewReader(r, 256)
			var out []Event
			for i := 0; i <= len(data)+1; i++ {
				e, err := rd.Next()
				if err != nil {
					return out, err
				}
				e.Data = bytes.Clone(e.Data)
				out = append(out, e)
			}
			t.Fatalf("more events than input bytes")
			return nil, nil
		}
		got, err := read(bytes.NewReader(data))
		if err != io.EOF && !errors.Is(err, ErrEventTooLarge) {
			t.Fatalf("unexpected error %v", err)
		}
		got2, err2 := read(iotest.OneByteReader(bytes.NewReader(data)))
		if (err == io.EOF) != (err2 == io.EOF) || len(got) != len(got2) {
			t.Fatalf("chunking changed the result: %d events (%v) vs %d (%v)", len(got), err, len(got2), err2)
		}
		for i := range got {
			a, b := got[i], got2[i]
			if a.Type != b.Type || a.ID != b.ID || !bytes.Equal(a.Data, b.Data) || a.Retry != b.Retry || a.HasRetry != b.HasRetry {
				t.Fatalf("event %d differs by chunking: %+v vs %+v", i, a, b)
			}
			// Re-encode (types and ids from a parsed stream never hold line
			// breaks) and re-read.
			enc, err := AppendEvent(nil, a)
			if err != nil {
				t.Fatalf("AppendEvent(%+v): %v", a, err)
			}
			e, err := NewReader(bytes.NewReader(enc), 0).Next()
			if err != nil {
				t.Fatalf("re-reading %q: %v", enc, err)
			}
			if e.Type != a.Type || e.ID != a.ID || !bytes.Equal(e.Data, a.Data) || e.Retry != a.Retry {
				t.Fatalf("round trip changed %+v into %+v (wire %q)", a, e, enc)
			}
		}
	})
}
