package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/store"
)

// appendN appends n sample records through a Log with the exporters and
// closes it (which drains the exporters).
func appendN(t *testing.T, n int, opts *Options) []*Record {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	l, err := New(store.NewAuditMemory(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Record
	for i := range n {
		r := sampleRecord(i)
		if i == 1 {
			r.Decision, r.Outcome = DecisionDeny, OutcomeDenied
		}
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readJSONL(t *testing.T, path string) []*Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Record
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, &r)
	}
	return out
}

func TestJSONLExporter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	e, err := NewJSONLExporter(path)
	if err != nil {
		t.Fatal(err)
	}
	want := appendN(t, 5, &Options{Exporters: []Exporter{e}})
	got := readJSONL(t, path)
	if len(got) != 5 {
		t.Fatalf("%d lines, want 5", len(got))
	}
	for i := range want {
		if got[i].Seq != want[i].Seq || got[i].Hash != want[i].Hash || got[i].Target != want[i].Target || !got[i].Time.Equal(want[i].Time) {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
		if got[i].Args != nil {
			t.Errorf("line %d exported payload without KeepPayloads", i)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
}

func TestJSONLExporterRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	exp, err := NewJSONLExporter(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	recs := []*Record{{Seq: 1, Action: "a"}, {Seq: 2, Action: "b"}}
	if err := exp.Export(ctx, recs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(ctx, recs[1:]); err != nil {
		t.Fatal(err)
	}
	exp.Close()
	if old, cur := readJSONL(t, path+".1"), readJSONL(t, path); len(old) != 1 || len(cur) != 1 || cur[0].Seq != 2 {
		t.Fatalf("after rotation: old %d lines, new %v", len(old), cur)
	}
	if err := exp.Export(ctx, recs); err == nil {
		t.Error("Export after Close succeeded")
	}
}

var syslogRE = regexp.MustCompile(`^<(\d+)>1 (\S+) (\S+) mcpgate-test (\d+) audit - (\{.*\})$`)

func checkSyslog(t *testing.T, msg string, want *Record) {
	t.Helper()
	m := syslogRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("not an RFC 5424 message: %q", msg)
	}
	pri := 13*8 + 5
	if want.Decision == DecisionDeny {
		pri = 13*8 + 4
	}
	if m[1] != strconv.Itoa(pri) {
		t.Errorf("PRI %s, want %d", m[1], pri)
	}
	if ts, err := time.Parse(time.RFC3339Nano, m[2]); err != nil || !ts.Equal(want.Time) {
		t.Errorf("timestamp %s (%v), want %v", m[2], err, want.Time)
	}
	var r Record
	if err := json.Unmarshal([]byte(m[5]), &r); err != nil || r.Seq != want.Seq || r.Hash != want.Hash {
		t.Errorf("body %s: %v", m[5], err)
	}
}

func TestSyslogExporterUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	e, err := NewSyslogExporter("udp", pc.LocalAddr().String(), "mcpgate-test")
	if err != nil {
		t.Fatal(err)
	}
	want := appendN(t, 3, &Options{Exporters: []Exporter{e}})
	buf := make([]byte, 65536)
	for i := range 3 {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		checkSyslog(t, string(buf[:n]), want[i])
	}
}

func TestSyslogExporterTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 10)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			// Octet counting: MSG-LEN SP SYSLOG-MSG.
			lenStr, err := br.ReadString(' ')
			if err != nil {
				close(msgs)
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(lenStr))
			if err != nil {
				close(msgs)
				return
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(br, b); err != nil {
				close(msgs)
				return
			}
			msgs <- string(b)
		}
	}()
	e, err := NewSyslogExporter("tcp", ln.Addr().String(), "mcpgate-test")
	if err != nil {
		t.Fatal(err)
	}
	want := appendN(t, 3, &Options{Exporters: []Exporter{e}})
	for i := range 3 {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("stream ended after %d messages", i)
			}
			checkSyslog(t, m, want[i])
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d not received", i)
		}
	}
}

func TestSyslogExporterOptions(t *testing.T) {
	for _, tt := range []struct{ network, addr, tag string }{
		{"http", "127.0.0.1:514", ""},
		{"udp", "", ""},
		{"udp", "127.0.0.1:514", "has space"},
		{"udp", "127.0.0.1:514", strings.Repeat("x", 49)},
	} {
		if _, err := NewSyslogExporter(tt.network, tt.addr, tt.tag); err == nil {
			t.Errorf("NewSyslogExporter(%q, %q, %q) succeeded", tt.network, tt.addr, tt.tag)
		}
	}
}

type failingExporter struct {
	calls  atomic.Int32
	closed atomic.Bool
	block  chan struct{}
}

func (f *failingExporter) Export(ctx context.Context, recs []*Record) error {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
	}
	return errors.New("sink unavailable")
}

func (f *failingExporter) Close() error { f.closed.Store(true); return nil }

func TestExportFailureDoesNotFailAppend(t *testing.T) {
	fe := &failingExporter{}
	var logged bytes.Buffer
	var mu sync.Mutex
	st := store.NewAuditMemory()
	l, err := New(st, &Options{Exporters: []Exporter{fe}, ExportAttempts: 2, Logger: slogTo(&logged, &mu)})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), sampleRecord(1)); err != nil {
		t.Fatalf("Append with failing exporter: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fe.calls.Load(); got != 2 {
		t.Errorf("%d export attempts, want 2", got)
	}
	if !fe.closed.Load() {
		t.Error("exporter not closed")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "export failed, batch dropped") {
		t.Errorf("drop not logged: %s", logged.String())
	}
}

func TestSlowExporterDoesNotBlockAppend(t *testing.T) {
	fe := &failingExporter{block: make(chan struct{})}
	var logged bytes.Buffer
	var mu sync.Mutex
	l, err := New(store.NewAuditMemory(), &Options{Exporters: []Exporter{fe}, ExportQueue: 1, ExportAttempts: 1, Logger: slogTo(&logged, &mu)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		for i := range 20 {
			if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append blocked by a stuck exporter")
	}
	close(fe.block)
	l.Close()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "export queue full") {
		t.Errorf("queue overflow not logged")
	}
}

func slogTo(b *bytes.Buffer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: b, mu: mu}, nil))
}
