package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzResponse feeds arbitrary bytes to the transport as a server's answer:
// it must return a response or an error, never panic or hang, and a body
// it returns must end.
func FuzzResponse(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
	f.Add("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
	f.Add("HTTP/1.0 200 OK\r\n\r\nbody until close")
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\nshort")
	f.Fuzz(func(t *testing.T, answer string) {
		tr := &Transport{MaxHeaderBytes: 4096, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				// Read the request head, then answer.
				buf := make([]byte, 4096)
				server.SetDeadline(time.Now().Add(2 * time.Second))
				server.Read(buf)
				io.Copy(server, strings.NewReader(answer))
			}()
			return client, nil
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://fuzz.invalid/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	})
}
