package mcp

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIsLocalHost(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST:8080", true},
		{"127.0.0.1", true},
		{"127.0.0.1:3000", true},
		{"[::1]", true},
		{"[::1]:3000", true},
		{"::1", true},
		{"localhost:", false},
		{"localhost:99999", false},
		{"localhost:abc", false},
		{"localhost.evil.com", false},
		{"evil.com", false},
		{"127.0.0.2", false},
		{"0.0.0.0", false},
		{"", false},
		{"[::1", false},
	}
	for _, tt := range tests {
		if got := isLocalHost(tt.in); got != tt.want {
			t.Errorf("isLocalHost(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestOriginPolicy(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}
	public := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 443}
	tests := []struct {
		name   string
		policy originPolicy
		local  net.Addr
		host   string
		origin string
		ok     bool
	}{
		{"loopback local", originPolicy{}, loop, "localhost:80", "", true},
		{"loopback evil host", originPolicy{}, loop, "evil.com", "", false},
		{"loopback evil origin", originPolicy{}, loop, "127.0.0.1", "http://evil.com", false},
		{"loopback local origin", originPolicy{}, loop, "127.0.0.1", "http://localhost:5173", true},
		{"loopback ftp origin", originPolicy{}, loop, "127.0.0.1", "ftp://localhost", false},
		{"public any host", originPolicy{}, public, "mcp.example.com", "", true},
		{"public same origin", originPolicy{}, public, "mcp.example.com", "https://mcp.example.com", true},
		{"public cross origin", originPolicy{}, public, "mcp.example.com", "https://evil.com", false},
		{"public local origin", originPolicy{}, public, "mcp.example.com", "http://localhost", false},
		{"public allowed origin", originPolicy{origins: []string{"https://app.example.com"}}, public, "mcp.example.com", "https://APP.example.com", true},
		{"public hosts list", originPolicy{hosts: []string{"mcp.example.com"}}, public, "other.example.com", "", false},
		{"public hosts list match", originPolicy{hosts: []string{"mcp.example.com"}}, public, "mcp.example.com:8443", "", true},
		{"wildcards", originPolicy{hosts: []string{"*"}, origins: []string{"*"}}, loop, "evil.com", "http://evil.com", true},
		{"disabled", originPolicy{disabled: true}, loop, "evil.com", "http://evil.com", true},
		{"no local addr", originPolicy{}, nil, "evil.com", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/mcp", nil)
			if tt.local != nil {
				r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, tt.local))
			}
			r.Host = tt.host
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			err := tt.policy.check(r)
			if (err == nil) != tt.ok {
				t.Errorf("check = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestAcceptsTypes(t *testing.T) {
	tests := []struct {
		accept    []string
		json, sse bool
	}{
		{nil, false, false},
		{[]string{"application/json, text/event-stream"}, true, true},
		{[]string{"application/json", "text/event-stream"}, true, true},
		{[]string{"text/event-stream;q=0.9, APPLICATION/JSON"}, true, true},
		{[]string{"application/json"}, true, false},
		{[]string{"*/*"}, true, true},
		{[]string{"text/*"}, false, true},
		{[]string{"application/jsonx, text/event-streams"}, false, false},
	}
	for _, tt := range tests {
		h := http.Header{"Accept": tt.accept}
		if j, s := acceptsTypes(h); j != tt.json || s != tt.sse {
			t.Errorf("acceptsTypes(%q) = %v, %v; want %v, %v", tt.accept, j, s, tt.json, tt.sse)
		}
	}
}

func TestIsJSONContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                 true,
		"application/json; charset=utf-8":  true,
		"Application/JSON;charset=UTF-8":   true,
		"application/json; charset=latin1": false,
		"text/json":                        false,
		"application/jsonl":                false,
		"":                                 false,
		"application/json; =":              false,
	} {
		if got := isJSONContentType(ct); got != want {
			t.Errorf("isJSONContentType(%q) = %v", ct, got)
		}
	}
}

func TestAppendSSEEvent(t *testing.T) {
	tests := []struct {
		id   string
		data string
		want string
	}{
		{"1_1", `{"a":1}`, "id: 1_1\nevent: message\ndata: {\"a\":1}\n\n"},
		{"", `{}`, "event: message\ndata: {}\n\n"},
		{"0_2", "{\n\"a\": 1\r\n}\r", "id: 0_2\nevent: message\ndata: {\ndata: \"a\": 1\ndata: }\ndata: \n\n"},
	}
	for _, tt := range tests {
		if got := string(appendSSEEvent(nil, tt.id, []byte(tt.data))); got != tt.want {
			t.Errorf("appendSSEEvent(%q, %q) = %q, want %q", tt.id, tt.data, got, tt.want)
		}
	}
	if got := string(appendSSEPriming(nil, "3_0", 500)); got != "id: 3_0\nretry: 500\ndata: \n\n" {
		t.Errorf("priming %q", got)
	}
}

func TestParseEventID(t *testing.T) {
	tests := []struct {
		in     string
		stream string
		seq    int64
		ok     bool
	}{
		{"0_0", "0", 0, true},
		{"12_345", "12", 345, true},
		{"1_01", "", 0, false},
		{"01_1", "", 0, false},
		{"1", "", 0, false},
		{"_1", "", 0, false},
		{"1_", "", 0, false},
		{"1_-1", "", 0, false},
		{"1_1_1", "", 0, false},
		{"a_1", "", 0, false},
		{"1_99999999999999999999", "", 0, false},
		{"99999999999999999999_1", "", 0, false},
		{"", "", 0, false},
		{strings.Repeat("1", 70) + "_1", "", 0, false},
	}
	for _, tt := range tests {
		s, n, err := parseEventID(tt.in)
		if (err == nil) != tt.ok || s != tt.stream || n != tt.seq {
			t.Errorf("parseEventID(%q) = %q, %d, %v", tt.in, s, n, err)
		}
	}
}

func TestWriteHTTPError(t *testing.T) {
	w := httptest.NewRecorder()
	writeHTTPError(w, 400, -32600, "bad \"thing\"\n\xff")
	if w.Code != 400 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"bad \"thing\"\u000a` + "\uFFFD" + `"}}`
	if got := w.Body.String(); got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

// FuzzParseEventID checks that Last-Event-ID parsing never panics and
// accepts exactly the ids appendEventID makes.
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"0_0", "1_5", "12_345", "", "_", "1__2", "01_1", "9223372036854775807_9223372036854775807", "1_\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		stream, seq, err := parseEventID(s)
		if err != nil {
			return
		}
		if seq < 0 {
			t.Fatalf("negative seq from %q", s)
		}
		if back := string(appendEventID(nil, stream, seq)); back != s {
			t.Fatalf("parseEventID(%q) = %q, %d, which formats as %q", s, stream, seq, back)
		}
	})
}

// FuzzAppendSSEEvent checks that any message data survives SSE framing: a
// client joining the data lines gets the data back with line breaks
// normalised to "\n", and no other field can be injected.
func FuzzAppendSSEEvent(f *testing.F) {
	for _, s := range []string{`{"a":1}`, "{\n}", "{\r\n}", "\r\r\n\n", "data: x\n\nid: 5", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		ev := appendSSEEvent(nil, "1_1", []byte(data))
		if !bytes.HasSuffix(ev, []byte("\n\n")) {
			t.Fatalf("event %q does not end with a blank line", ev)
		}
		body := string(ev[:len(ev)-2])
		var got []string
		for i, line := range strings.Split(body, "\n") {
			switch {
			case i == 0 && line == "id: 1_1", i == 1 && line == "event: message":
			case strings.HasPrefix(line, "data: "):
				got = append(got, line[len("data: "):])
			default:
				t.Fatalf("unexpected line %q in %q", line, ev)
			}
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(data)
		if strings.Join(got, "\n") != want {
			t.Fatalf("data %q came back as %q", data, strings.Join(got, "\n"))
		}
	})
}

// FuzzOriginPolicy checks that arbitrary Host and Origin headers never
// panic, and that non-local hosts are refused on loopback listeners.
func FuzzOriginPolicy(f *testing.F) {
	for _, s := range [][2]string{{"localhost", ""}, {"evil.com", "http://evil.com"}, {"[::1]:80", "http://[::1"}, {"", "://"}, {"127.0.0.1:", "http://127.0.0.1:99999"}} {
		f.Add(s[0], s[1])
	}
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}
	f.Fuzz(func(t *testing.T, host, origin string) {
		r := httptest.NewRequest("GET", "/", nil)
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(loop)))
		r.Host = host
		r.Header.Set("Origin", origin)
		p := originPolicy{}
		if err := p.check(r); err == nil && !isLocalHost(host) {
			t.Fatalf("host %q accepted on a loopback listener", host)
		}
	})
}
