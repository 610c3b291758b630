package safehttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr string
		opts *Options
		want string // "" = allowed, else reason
	}{
		{"93.184.216.34", nil, ""},
		{"2606:2800:220:1:248:1893:25c8:1946", nil, ""},
		{"169.254.169.254", nil, "metadata-service"},
		{"169.254.169.254", &Options{AllowPrivate: true, AllowLoopback: true}, "metadata-service"},
		{"fd00:ec2::254", &Options{AllowPrivate: true}, "metadata-service"},
		{"169.254.1.1", nil, "link-local"},
		{"fe80::1", nil, "link-local"},
		{"10.0.0.1", nil, "private"},
		{"10.255.255.255", nil, "private"},
		{"172.16.0.1", nil, "private"},
		{"172.31.255.255", nil, "private"},
		{"172.32.0.1", nil, ""},
		{"192.168.1.1", nil, "private"},
		{"fc00::1", nil, "private"},
		{"fd12:3456::1", nil, "private"},
		{"100.64.0.1", nil, "carrier-grade NAT"},
		{"10.0.0.1", &Options{AllowPrivate: true}, ""},
		{"127.0.0.1", nil, "loopback"},
		{"127.1.2.3", nil, "loopback"},
		{"::1", nil, "loopback"},
		{"::1", &Options{AllowLoopback: true}, ""},
		{"127.0.0.1", &Options{AllowPrivate: true}, "loopback"},
		{"0.0.0.0", nil, "unspecified"},
		{"::", nil, "unspecified"},
		{"224.0.0.1", nil, "multicast"},
		{"ff02::1", nil, "multicast"},
		{"255.255.255.255", nil, "reserved"},
		{"192.0.2.1", nil, "documentation"},
		{"::ffff:169.254.169.254", nil, "metadata-service"},
		{"::ffff:10.1.2.3", nil, "private"},
		{"::ffff:8.8.8.8", nil, ""},
		{"64:ff9b::a00:1", nil, "private"},             // NAT64 of 10.0.0.1
		{"2002:a9fe:a9fe::1", nil, "metadata-service"}, // 6to4 of 169.254.169.254
		{"fe80::1%eth0", nil, "link-local"},
		{"169.254.169.254", &Options{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}}, ""},
		{"10.9.9.9", &Options{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}, ""},
		{"10.8.9.9", &Options{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}, "private"},
	}
	for _, tt := range tests {
		err := CheckAddr(netip.MustParseAddr(tt.addr), tt.opts)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckAddr(%s, %+v) = %v, want allowed", tt.addr, tt.opts, err)
			}
			continue
		}
		var be *BlockedError
		if !errors.As(err, &be) || be.Reason != tt.want {
			t.Errorf("CheckAddr(%s, %+v) = %v, want blocked as %q", tt.addr, tt.opts, err, tt.want)
		}
	}
}

// countingServer is an httptest server on 127.0.0.1 that counts accepted
// connections, to prove that refused dials never connect.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestDialTimeBlocking(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	srv, conns := countingServer(t, ok)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	// A resolver that maps names to fixed addresses; nothing leaves the machine.
	dns := map[string][]netip.Addr{
		"metadata.test": {netip.MustParseAddr("169.254.169.254")},
		"private.test":  {netip.MustParseAddr("10.0.0.7")},
		"rebind.test":   {netip.MustParseAddr("127.0.0.1")},
		"v6loop.test":   {netip.MustParseAddr("::1")},
		"localhost":     {netip.MustParseAddr("127.0.0.1")},
	}
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := dns[host]; ok {
			return a, nil
		}
		return nil, errors.New("no such host (test resolver)")
	}
	// Every URL is https so the request-time check passes and the refusal
	// must come from the dial-time check.
	tests := []struct {
		name, url, reason string
		opts              Options
	}{
		{"metadata literal", "https://169.254.169.254/latest/meta-data/", "metadata-service", Options{}},
		{"metadata by name", "https://metadata.test/", "metadata-service", Options{AllowPrivate: true, AllowLoopback: true}},
		{"private literal", "https://10.0.0.1/", "private", Options{}},
		{"private by name", "https://private.test/", "private", Options{}},
		{"ipv6 loopback literal", "https://[::1]:1/", "loopback", Options{}},
		{"ipv6 loopback by name", "https://v6loop.test/", "loopback", Options{}},
		{"rebinding to loopback test server", "https://rebind.test:" + itoa(port) + "/", "loopback", Options{}},
		{"loopback test server literal", "https://127.0.0.1:" + itoa(port) + "/", "loopback", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.LookupNetIP = lookup
			before := conns.Load()
			resp, err := NewClient(&o).Get(tt.url)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s succeeded, want blocked", tt.url)
			}
			var be *BlockedError
			if !errors.As(err, &be) || be.Reason != tt.reason {
				t.Fatalf("GET %s: %v, want BlockedError %q", tt.url, err, tt.reason)
			}
			if got := conns.Load(); got != before {
				t.Fatalf("server saw %d new connections, want none", got-before)
			}
		})
	}

	// The same server is reachable once loopback is allowed.
	c := NewClient(&Options{AllowLoopback: true, AllowInsecureLoopback: true, LookupNetIP: lookup})
	for _, u := range []string{srv.URL, "http://localhost:" + itoa(port) + "/"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatalf("GET %s with AllowLoopback: %v", u, err)
		}
		b, err := ReadBody(resp, 10)
		if err != nil || string(b) != "ok" {
			t.Fatalf("body %q %v", b, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	loop := &Options{AllowInsecureLoopback: true}
	tests := []struct {
		url  string
		opts *Options
		ok   bool
	}{
		{"https://example.com/x", nil, true},
		{"http://example.com/x", nil, false},
		{"http://example.com/x", loop, false},
		{"http://127.0.0.1:8080/x", nil, false},
		{"http://127.0.0.1:8080/x", loop, true},
		{"http://localhost:3000/x", loop, true},
		{"http://api.localhost/x", loop, true},
		{"http://[::1]:3000/x", loop, true},
		{"http://localhost.evil.com/x", loop, false},
		{"https://user:pw@example.com/", nil, false},
		{"ftp://example.com/", nil, false},
		{"file:///etc/passwd", nil, false},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.url)
		err := CheckURL(u, tt.opts)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%s, %+v) = %v, want ok=%v", tt.url, tt.opts, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecureURL) {
			t.Errorf("CheckURL error %v does not wrap ErrInsecureURL", err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("CheckURL error leaks password: %v", err)
		}
	}
}

func TestRedirects(t *testing.T) {
	var other *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/target", http.StatusFound) })
	mux.HandleFunc("/cross", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/target", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("target")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var otherHits atomic.Int64
	other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) }))
	defer other.Close()

	opts := &Options{AllowLoopback: true, AllowInsecureLoopback: true}
	c := NewClient(opts)
	resp, err := c.Get(srv.URL + "/same")
	if err != nil {
		t.Fatalf("same-origin redirect: %v", err)
	}
	if b, _ := ReadBody(resp, 0); string(b) != "target" {
		t.Fatalf("same-origin body %q", b)
	}
	for _, p := range []string{"/cross", "/loop"} {
		if _, err := c.Get(srv.URL + p); !errors.Is(err, ErrRedirect) {
			t.Fatalf("GET %s: %v, want ErrRedirect", p, err)
		}
	}
	if otherHits.Load() != 0 {
		t.Fatal("cross-origin redirect target was contacted")
	}
	no := NewClient(&Options{AllowLoopback: true, AllowInsecureLoopback: true, NoRedirects: true})
	if _, err := no.Get(srv.URL + "/same"); !errors.Is(err, ErrRedirect) {
		t.Fatalf("NoRedirects: %v, want ErrRedirect", err)
	}
}

func TestReadLimited(t *testing.T) {
	if b, err := ReadLimited(strings.NewReader("12345"), 5); err != nil || string(b) != "12345" {
		t.Fatalf("exact: %q %v", b, err)
	}
	if _, err := ReadLimited(strings.NewReader("123456"), 5); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("over: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func BenchmarkCheckAddr(b *testing.B) {
	a := netip.MustParseAddr("93.184.216.34")
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckAddr(a, nil); err != nil {
			b.Fatal(err)
		}
	}
}
