package authserver

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestAllowEntryMatches(t *testing.T) {
	for _, tt := range []struct {
		entry, url string
		want       bool
	}{
		{"https://apps.example.com/mcp/", "https://apps.example.com/mcp/client.json", true},
		{"https://apps.example.com/mcp", "https://apps.example.com/mcp/client.json", true},
		{"https://apps.example.com/mcp", "https://apps.example.com/mcp", true},
		{"https://apps.example.com/mcp", "https://apps.example.com/mcp-evil/client.json", false},
		{"https://apps.example.com", "https://apps.example.com.evil.net/client.json", false},
		{"https://apps.example.com", "https://apps.example.com/anything.json", true},
		{"https://APPS.example.com/x/", "https://apps.example.com/x/c.json", true},
		{"https://apps.example.com/x/", "http://apps.example.com/x/c.json", false},
		{"https://apps.example.com:8443/", "https://apps.example.com/c.json", false},
		{"apps.example.com", "https://apps.example.com/c.json", true},
		{"apps.example.com", "https://apps.example.com:8443/c.json", true},
		{"apps.example.com", "https://x.apps.example.com/c.json", false},
		{"apps.example.com:8443", "https://apps.example.com:8443/c.json", true},
		{"apps.example.com:8443", "https://apps.example.com/c.json", false},
		{"*.example.com", "https://apps.example.com/c.json", true},
		{"*.example.com", "https://example.com/c.json", false},
		{"*.example.com", "https://evilexample.com/c.json", false},
		{"127.0.0.1", "http://127.0.0.1:5555/cb", true},
		{"[::1]", "http://[::1]:5555/cb", true},
	} {
		u, _ := url.Parse(tt.url)
		if got := allowEntryMatches(tt.entry, u); got != tt.want {
			t.Errorf("allowEntryMatches(%q, %q) = %v, want %v", tt.entry, tt.url, got, tt.want)
		}
	}
}

func TestRateLimiter(t *testing.T) {
	l := newRateLimiter(RateLimit{PerMinute: 60, Burst: 2})
	now := time.Unix(1_800_000_000, 0)
	for i := range 2 {
		if ok, _ := l.allow("a", now); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := l.allow("a", now)
	if ok || wait != time.Second {
		t.Fatalf("over the burst: ok=%v wait=%v; want refused, 1s", ok, wait)
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Fatal("another address shares the bucket")
	}
	if ok, _ := l.allow("a", now.Add(time.Second)); !ok {
		t.Fatal("not refilled after 1 s")
	}
	if newRateLimiter(RateLimit{PerMinute: -1}) != nil {
		t.Fatal("a negative rate should turn the limit off")
	}
	var off *rateLimiter
	if ok, _ := off.allow("a", now); !ok {
		t.Fatal("the nil limiter refuses")
	}
	// The table of buckets stays bounded.
	for i := range maxBuckets + 10 {
		l.allow(time.Duration(i).String(), now)
	}
	if len(l.buckets) > maxBuckets {
		t.Fatalf("%d buckets, bound %d", len(l.buckets), maxBuckets)
	}
}

func TestSourceAddress(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:4321":              "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":  "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1000": "2001:db8:1:2::/64",
		"pipe":                        "pipe",
	} {
		if got := sourceAddress(&http.Request{RemoteAddr: in}); got != want {
			t.Errorf("sourceAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
