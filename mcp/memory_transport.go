package mcp

import (
	"context"
	"sync"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// NewInMemoryTransports returns two transports connected to each other, for
// running a client and a server in one process (tests, embedding). Messages
// pass as values, without encoding.
func NewInMemoryTransports() (client, server Transport) {
	a2b := make(chan jsonrpc.Message, 64)
	b2a := make(chan jsonrpc.Message, 64)
	done := make(chan struct{})
	once := new(sync.Once)
	c := &memConn{in: b2a, out: a2b, done: done, once: once}
	s := &memConn{in: a2b, out: b2a, done: done, once: once}
	return &memTransport{c}, &memTransport{s}
}

type memTransport struct{ conn *memConn }

func (t *memTransport) Connect(context.Context) (Connection, error) { return t.conn, nil }

type memConn struct {
	in, out chan jsonrpc.Message
	done    chan struct{}
	once    *sync.Once
}

func (c *memConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	return receive(ctx, c.in, c.done, func() error { return ErrConnectionClosed })
}

func (c *memConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	select {
	case <-c.done:
		return ErrConnectionClosed
	default:
	}
	select {
	case c.out <- msg:
		return nil
	case <-c.done:
		return ErrConnectionClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *memConn) SessionID() string { return "" }
