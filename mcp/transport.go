package mcp

import (
	"context"
	"errors"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// ErrConnectionClosed is returned by operations on a connection or session
// that has been closed.
var ErrConnectionClosed = errors.New("mcp: connection closed")

// A Transport makes a Connection: a client transport dials a server (or
// starts its process); a server transport accepts one peer.
type Transport interface {
	// Connect returns a new connection. For client transports the
	// connection is ready for the initialize handshake.
	Connect(ctx context.Context) (Connection, error)
}

// A Connection is a bidirectional stream of JSON-RPC messages with one peer.
//
// Write must be safe for concurrent use. Read is only called from one
// goroutine at a time.
type Connection interface {
	// Read returns the next message from the peer. It returns an error
	// wrapping io.EOF or ErrConnectionClosed when the connection ends.
	Read(ctx context.Context) (jsonrpc.Message, error)
	// Write sends a message to the peer. The context may carry the request
	// the message relates to (see RelatedRequest), which transports with
	// several streams use to choose the stream.
	Write(ctx context.Context, msg jsonrpc.Message) error
	// Close ends the connection. It is safe to call more than once.
	Close() error
	// SessionID returns the transport-level session id, or "" if the
	// transport has none.
	SessionID() string
}

// pushConnection is implemented by connections whose transport delivers
// incoming messages itself, on the goroutine that received them (the
// Streamable HTTP server runs a request's handler on the goroutine of the
// HTTP request that carried it). The session then starts no read loop.
type pushConnection interface {
	Connection
	// setDeliver installs the function that handles one incoming message.
	// deliver returns once a request has been answered (for requests) or
	// the message has been dispatched (for the rest).
	setDeliver(deliver func(ctx context.Context, msg jsonrpc.Message))
}

// protocolVersionSetter is implemented by connections that need to know the
// negotiated protocol version (HTTP clients send it in a header).
type protocolVersionSetter interface {
	setProtocolVersion(v string)
}

type relatedRequestKey struct{}

// withRelatedRequest returns a context that marks messages written with it
// as related to the incoming request id.
func withRelatedRequest(ctx context.Context, id jsonrpc.ID) context.Context {
	return context.WithValue(ctx, relatedRequestKey{}, id)
}

// RelatedRequest returns the id of the incoming request that ctx belongs to,
// if any. Transports with several streams send messages related to a request
// on that request's stream.
func RelatedRequest(ctx context.Context) (jsonrpc.ID, bool) {
	id, ok := ctx.Value(relatedRequestKey{}).(jsonrpc.ID)
	return id, ok
}

// ErrSessionExpired is reported (wrapped) by client transports when the
// server says the session no longer exists (HTTP 404 on a request that
// carried a session id). A ClientSession then re-initializes transparently.
var ErrSessionExpired = errors.New("mcp: session expired")

// receive returns the next message queued on incoming. Once done is
// closed, messages already queued are still returned, then endErr().
func receive(ctx context.Context, incoming <-chan jsonrpc.Message, done <-chan struct{}, endErr func() error) (jsonrpc.Message, error) {
	select {
	case m := <-incoming:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-done:
		select {
		case m := <-incoming:
			return m, nil
		default:
		}
		return nil, endErr()
	}
}
