package mcp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// StdioTransport is the server side of the stdio transport: it reads
// newline-delimited JSON-RPC messages from os.Stdin and writes them to
// os.Stdout. Logs belong on os.Stderr.
type StdioTransport struct {
	// MaxMessageSize bounds one incoming message (one line). Zero means
	// jsonrpc.DefaultMaxMessageSize.
	MaxMessageSize int
	// Logger receives reports of malformed input. Nil means slog.Default().
	Logger *slog.Logger
}

// Connect returns a connection over os.Stdin and os.Stdout.
func (t *StdioTransport) Connect(ctx context.Context) (Connection, error) {
	return newIOConn(os.Stdin, os.Stdout, t.MaxMessageSize, t.Logger), nil
}

// IOTransport carries newline-delimited JSON-RPC messages over a reader and
// a writer, as the stdio transport does: one message per line, with no
// embedded newlines.
//
// A line that is not a valid message is reported to the Logger and skipped;
// if it was a request whose id could be read, the peer also gets an error
// response for it. Lines longer than MaxMessageSize are handled the same
// way.
type IOTransport struct {
	// Reader supplies the peer's messages.
	Reader io.ReadCloser
	// Writer receives the messages for the peer.
	Writer io.WriteCloser
	// MaxMessageSize bounds one incoming message (one line). Zero means
	// jsonrpc.DefaultMaxMessageSize.
	MaxMessageSize int
	// Logger receives reports of malformed input. Nil means slog.Default().
	Logger *slog.Logger
}

// Connect returns a connection over t.Reader and t.Writer. Closing the
// connection closes both.
func (t *IOTransport) Connect(ctx context.Context) (Connection, error) {
	if t.Reader == nil || t.Writer == nil {
		return nil, errors.New("mcp: IOTransport needs both a Reader and a Writer")
	}
	return newIOConn(t.Reader, t.Writer, t.MaxMessageSize, t.Logger), nil
}

// ioConn is a connection over a newline-delimited message stream.
type ioConn struct {
	r       io.ReadCloser
	w       io.WriteCloser
	maxSize int
	logger  *slog.Logger

	lines    chan ioLine
	readDone chan struct{} // closed when the reader goroutine ends
	readErr  error         // why it ended; set before readDone closes
	done     chan struct{} // closed by Close

	// endErr, if set, turns the end of the input into the error Read
	// returns (CommandTransport adds the process's exit status).
	endErr func(readErr error) error

	wmu    sync.Mutex
	wbuf   []byte
	closed atomic.Bool

	closeOnce sync.Once
	closeErr  error
	onClose   func() error // replaces the default closing of r and w
}

// ioLine is one line of input, or the start of one that was too long.
type ioLine struct {
	data     []byte
	tooLarge bool
}

func newIOConn(r io.ReadCloser, w io.WriteCloser, maxSize int, logger *slog.Logger) *ioConn {
	if maxSize <= 0 {
		maxSize = jsonrpc.DefaultMaxMessageSize
	}
	if logger == nil {
		logger = slog.Default()
	}
	c := &ioConn{
		r:        r,
		w:        w,
		maxSize:  maxSize,
		logger:   logger,
		lines:    make(chan ioLine),
		readDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	go c.readLines()
	return c
}

// readLines splits the input into lines and hands them to Read.
func (c *ioConn) readLines() {
	defer close(c.readDone)
	br := bufio.NewReaderSize(c.r, 64<<10)
	for {
		line, tooLarge, err := readLine(br, c.maxSize)
		if len(line) > 0 || tooLarge {
			select {
			case c.lines <- ioLine{line, tooLarge}:
			case <-c.done:
				c.readErr = ErrConnectionClosed
				return
			}
		}
		if err != nil {
			c.readErr = err
			return
		}
	}
}

// readLine reads one line without its newline (and a CR before it) into a
// new buffer. A line longer than max is consumed to its end; only its first
// 1 KiB is returned, with tooLarge set. A last line without a newline is
// returned with the error io.EOF.
func readLine(br *bufio.Reader, max int) (line []byte, tooLarge bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLarge {
			if len(line)+len(chunk) > max+2 { // +2: room for CRLF
				tooLarge = true
				keep := min(1024, len(line)+len(chunk))
				if len(line) < keep {
					line = append(line, chunk[:keep-len(line)]...)
				}
				line = line[:keep]
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			return line, tooLarge, err
		}
		if !tooLarge {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) > max {
				tooLarge = true
				line = line[:min(1024, len(line))]
			}
		}
		return line, tooLarge, err
	}
}

// Read returns the next message. Malformed lines are reported and skipped.
func (c *ioConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	for {
		select {
		case l := <-c.lines:
			if l.tooLarge {
				if resp := c.oversizeResponse(l.data); resp != nil {
					// The waiting call fails at once, with why, instead of
					// waiting for its timeout.
					return resp, nil
				}
				c.badLine(ctx, l.data, fmt.Errorf("message exceeds the limit of %d bytes", c.maxSize), jsonrpc.CodeInvalidRequest)
				continue
			}
			if len(bytes.TrimSpace(l.data)) == 0 {
				continue // a blank line carries nothing
			}
			msg, err := jsonrpc.DecodeMessageLimit(l.data, c.maxSize)
			if err != nil {
				c.badLine(ctx, l.data, err, jsonrpc.ErrorCode(err))
				continue
			}
			return msg, nil
		case <-c.readDone:
			select {
			case <-c.done:
				return nil, ErrConnectionClosed
			default:
			}
			err := c.readErr
			if c.endErr != nil {
				return nil, c.endErr(err)
			}
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("mcp: reading input: %w", err)
		case <-c.done:
			return nil, ErrConnectionClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// oversizeResponse turns the start of a response that exceeded the size
// limit into an error response for the same id, so that the request it
// answers fails at once. It returns nil for anything but a response with
// a readable id.
func (c *ioConn) oversizeResponse(start []byte) *jsonrpc.Response {
	id, isRequest := peekRequestID(start)
	if isRequest || !id.IsValid() {
		return nil
	}
	c.logger.Error("mcp: response over the size limit", "id", id.String(), "limit", c.maxSize)
	return &jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: jsonrpc.CodeInternalError,
		Message: fmt.Sprintf("the response exceeds the message size limit of %d bytes and was dropped", c.maxSize)}}
}

// badLine reports a line that is not a valid message and, if it is a
// request whose id can be read, answers it with an error.
func (c *ioConn) badLine(ctx context.Context, line []byte, err error, code int64) {
	id, isRequest := peekRequestID(line)
	c.logger.Error("mcp: invalid message on the input stream", "error", err, "id", id.String(), "bytes", len(line))
	if !isRequest || !id.IsValid() {
		return
	}
	var msg string
	var we *jsonrpc.Error
	if errors.As(err, &we) {
		msg = we.Message
	} else {
		msg = err.Error()
	}
	resp := &jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: code, Message: msg}}
	if werr := c.Write(ctx, resp); werr != nil {
		c.logger.Error("mcp: answering an invalid request", "error", werr)
	}
}

// peekRequestID reads the "id" member of a top-level JSON object, leniently
// (duplicate names and invalid UTF-8 are tolerated, and the text may be
// truncated after the id), and reports whether the object has a "method"
// member too.
func peekRequestID(line []byte) (id jsonrpc.ID, isRequest bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(line), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return id, false
	}
	for i := 0; i < 1000; i++ {
		tok, err := dec.ReadToken()
		if err != nil || tok.Kind() != '"' {
			return id, isRequest
		}
		name := tok.String()
		switch name {
		case "id":
			v, err := dec.ReadValue()
			if err != nil {
				return id, isRequest
			}
			var parsed jsonrpc.ID
			if parsed.UnmarshalJSON(v) == nil {
				id = parsed
			}
		case "method":
			isRequest = true
			if dec.SkipValue() != nil {
				return id, isRequest
			}
		default:
			if dec.SkipValue() != nil {
				return id, isRequest
			}
		}
	}
	return id, isRequest
}

// Write sends one message as one line.
func (c *ioConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return ErrConnectionClosed
	}
	b, err := jsonrpc.AppendMessage(c.wbuf[:0], msg)
	if err != nil {
		return fmt.Errorf("mcp: encoding message: %w", err)
	}
	if bytes.IndexByte(b, '\n') >= 0 || bytes.IndexByte(b, '\r') >= 0 {
		// Raw params or results may hold formatted JSON; line breaks can
		// only be whitespace between tokens there, which Compact removes.
		v := jsontext.Value(b)
		if err := v.Compact(); err != nil {
			return fmt.Errorf("mcp: encoding message: %w", err)
		}
		b = v
	}
	b = append(b, '\n')
	if cap(b) <= 64<<10 {
		c.wbuf = b
	}
	if _, err := c.w.Write(b); err != nil {
		if c.closed.Load() {
			return ErrConnectionClosed
		}
		return fmt.Errorf("mcp: writing message: %w", err)
	}
	return nil
}

// Close closes the writer and the reader.
func (c *ioConn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.done)
		if c.onClose != nil {
			c.closeErr = c.onClose()
			return
		}
		werr := c.w.Close()
		rerr := c.r.Close()
		c.closeErr = errors.Join(werr, rerr)
	})
	return c.closeErr
}

// SessionID returns "": stdio has no sessions.
func (c *ioConn) SessionID() string { return "" }
