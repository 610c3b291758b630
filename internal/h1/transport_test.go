package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is an httptest server that counts the connections opened
// to it.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
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

func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
}

func TestKeepAlive(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(echo))
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := range 20 {
		resp, err := client.Post(srv.URL+"/x", "text/plain", strings.NewReader(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST /x %d", i); string(b) != want {
			t.Fatalf("body %q, want %q", b, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 20 sequential requests, want 1", n)
	}
}

func TestChunkedAndUnreadBody(t *testing.T) {
	big := strings.Repeat("x", 200<<10)
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		case "/big":
			io.WriteString(w, big)
		default:
			io.WriteString(w, "small")
		}
	}))
	client := &http.Client{Transport: &Transport{}}
	get := func(path string, read bool) string {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if !read {
			return ""
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := get("/chunked", true); got != "ab" {
		t.Errorf("chunked body %q", got)
	}
	if get("/small", true) != "small" || conns.Load() != 1 {
		t.Errorf("chunked response's connection not reused: %d connections", conns.Load())
	}
	// A big body closed unread closes its connection; the next request
	// dials again and works.
	get("/big", false)
	if got := get("/small", true); got != "small" {
		t.Errorf("after an unread big body: %q", got)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the unread big body's connection is not reused)", n)
	}
}

func TestServerClosedIdleConnection(t *testing.T) {
	var mu sync.Mutex
	var last net.Conn
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echo))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateIdle {
			mu.Lock()
			last = c
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	client := &http.Client{Transport: &Transport{}}
	do := func() {
		t.Helper()
		resp, err := client.Post(srv.URL, "text/plain", strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do()
	// The server closes the idle connection; the next request must not be
	// sent on it.
	for {
		mu.Lock()
		c := last
		mu.Unlock()
		if c != nil {
			c.Close()
			break
		}
		time.Sleep(time.Millisecond)
	}
	// The close reaches the client's socket asynchronously; an idle
	// connection found closed is dropped, and one not yet known closed is
	// the case net/http cannot avoid either. Wait until the client side
	// sees it, then send.
	tr := client.Transport.(*Transport)
	for deadline := time.Now().Add(5 * time.Second); ; {
		tr.mu.Lock()
		var idle *conn
		for _, cs := range tr.idle {
			if len(cs) > 0 {
				idle = cs[0]
			}
		}
		tr.mu.Unlock()
		if idle == nil {
			t.Fatal("no idle connection kept")
		}
		idle.nc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, err := idle.br.Peek(1)
		idle.nc.SetReadDeadline(time.Time{})
		if errors.Is(err, io.EOF) {
			// Put the EOF back for alive() to see: it re-reads.
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server's close never reached the client")
		}
	}
	do()
}

func TestContextCancel(t *testing.T) {
	release := make(chan struct{})
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	client := &http.Client{Transport: &Transport{}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		_, err := client.Do(req)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
}

func TestStreamClosedMidway(t *testing.T) {
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	client := &http.Client{Transport: &Transport{}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "data: one\n\n" {
		t.Fatalf("first event %q, %v", buf, err)
	}
	// Close does not wait for the stream, and a reader blocked in Read
	// is released.
	readErr := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(make([]byte, 10))
		readErr <- err
	}()
	resp.Body.Close()
	if err := <-readErr; err == nil {
		t.Error("a Read blocked on a closed stream returned no error")
	}
}

func TestHeadTooLarge(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Big: " + strings.Repeat("y", 1000) + "\r\n"
		for range 100 {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	client := &http.Client{Transport: &Transport{MaxHeaderBytes: 16 << 10}}
	_, err = client.Get("http://" + ln.Addr().String())
	if !errors.Is(err, errHeadTooLarge) {
		t.Errorf("endless head: %v, want %v", err, errHeadTooLarge)
	}
}

func TestFallback(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(echo))
	defer srv.Close()
	client := &http.Client{Transport: &Transport{Fallback: srv.Client().Transport}}
	resp, err := client.Get(srv.URL + "/tls")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "GET /tls " {
		t.Errorf("https through the fallback: %q", b)
	}
}

func TestConcurrent(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(echo))
	client := &http.Client{Transport: &Transport{MaxIdlePerHost: 4}}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 50 {
				body := fmt.Sprintf("%d-%d", i, j)
				resp, err := client.Post(srv.URL, "text/plain", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "POST / "+body {
					t.Errorf("got %q for %q", b, body)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d connections for 800 requests from 16 goroutines, 4 kept idle", conns.Load())
}

func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"net-http", http.DefaultTransport.(*http.Transport).Clone()},
		{"h1", &Transport{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: c.rt}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Post(srv.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0"}`))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// TestEmptyBodyFreesConnection: a response without a body (202) frees its
// connection at once, even when the caller never closes the body.
func TestEmptyBodyFreesConnection(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	client := &http.Client{Transport: &Transport{}}
	for range 10 {
		resp, err := client.Post(srv.URL, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// Body deliberately not closed.
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 bodiless answers never closed, want 1", n)
	}
}
