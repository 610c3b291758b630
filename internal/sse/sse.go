// Package sse reads and writes Server-Sent Events streams
// (text/event-stream), as the HTML Living Standard defines them, for the MCP
// HTTP transports.
//
// The Reader follows the standard's interpretation rules: lines end with
// CRLF, LF or CR; a line starting with a colon is a comment; the "id" field
// sets the last event id (ids containing NUL are ignored), "retry" sets the
// reconnection time when its value is all ASCII digits, "data" lines are
// joined with LF, and a blank line dispatches the event. An event still
// being read when the stream ends is discarded. Unlike a browser, the Reader
// also returns events whose data is empty (the MCP priming event has an id
// and empty data), so that callers see every id.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// DefaultMaxEventSize is the limit on the size of one line and of one
// event's data that a Reader applies when given no limit: 4 MiB.
const DefaultMaxEventSize = 4 << 20

// ErrEventTooLarge is returned by Reader.Next when a line or an event's data
// exceeds the reader's size limit.
var ErrEventTooLarge = errors.New("sse: event too large")

// Event is one server-sent event.
type Event struct {
	// Type is the event type from the "event" field; "" means the default
	// type, "message".
	Type string
	// ID is the last event id in effect when the event was dispatched: the
	// value of the event's own "id" field, or the id of an earlier event
	// when it had none.
	ID string
	// Data is the event's data: its "data" lines joined with LF. A Reader
	// reuses the memory of Data for the next event.
	Data []byte
	// Retry is the reconnection time from the event's "retry" field, when
	// HasRetry is set.
	Retry time.Duration
	// HasRetry reports whether the event had a valid "retry" field. A writer
	// writes a retry field when HasRetry is set or Retry is positive.
	HasRetry bool
}

// A Reader reads events from a text/event-stream body.
type Reader struct {
	br       *bufio.Reader
	max      int
	line     []byte
	data     []byte
	lastID   string // the last event id string, set when an event is dispatched
	idBuf    string // the last event id buffer, set by id fields
	retry    time.Duration
	retrySet bool
	skipLF   bool // the previous line ended with CR: skip a following LF
	started  bool // the byte order mark check is done
	eventTy  string
}

// NewReader returns a Reader of r. maxEventSize bounds the length of one line
// and of one event's data; zero or less means DefaultMaxEventSize.
func NewReader(r io.Reader, maxEventSize int) *Reader {
	if maxEventSize <= 0 {
		maxEventSize = DefaultMaxEventSize
	}
	size := 4096
	if maxEventSize < size {
		size = 16 // bufio's minimum
	}
	return &Reader{br: bufio.NewReaderSize(r, size), max: maxEventSize}
}

// LastEventID returns the last event id of the stream so far (the value to
// send as Last-Event-ID when reconnecting).
func (r *Reader) LastEventID() string { return r.lastID }

// Retry returns the most recent reconnection time the stream set with a
// "retry" field, and whether there was one. Unlike event ids, a retry field
// takes effect as soon as its line is read, even if the event it is part of
// is never completed.
func (r *Reader) Retry() (time.Duration, bool) { return r.retry, r.retrySet }

// Next reads the next event. Blocks that contain only comments are skipped.
// At the end of the stream it returns io.EOF (an unfinished event is
// discarded); a line or data longer than the limit gives an error wrapping
// ErrEventTooLarge. The returned event's Data is only valid until the next
// call.
func (r *Reader) Next() (Event, error) {
	r.data = r.data[:0]
	r.eventTy = ""
	var (
		fields   bool // the block had a field other than a comment
		hasData  bool
		retry    time.Duration
		hasRetry bool
	)
	for {
		line, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if !fields {
				continue
			}
			data := r.data
			if hasData {
				data = data[:len(data)-1] // the LF after the last data line
			}
			r.lastID = r.idBuf
			return Event{Type: r.eventTy, ID: r.lastID, Data: data, Retry: retry, HasRetry: hasRetry}, nil
		}
		if line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "event":
			fields = true
			r.eventTy = string(value)
		case "data":
			fields = true
			if len(r.data)+len(value)+1 > r.max {
				return Event{}, fmt.Errorf("%w: data exceeds %d bytes", ErrEventTooLarge, r.max)
			}
			hasData = true
			r.data = append(r.data, value...)
			r.data = append(r.data, '\n')
		case "id":
			fields = true
			if bytes.IndexByte(value, 0) < 0 {
				r.idBuf = string(value)
			}
		case "retry":
			fields = true
			if ms, ok := parseDigits(value); ok {
				retry = time.Duration(ms) * time.Millisecond
				hasRetry = true
				r.retry = retry
				r.retrySet = true
			}
		default:
			// Unknown fields are ignored.
		}
	}
}

// parseDigits parses a value made only of ASCII digits.
func parseDigits(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 12 { // 12 digits of milliseconds: ~31 years
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// readLine returns the next line without its terminator. The line is only
// valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	if !r.started {
		r.started = true
		// A stream may start with a UTF-8 byte order mark, which is skipped.
		if b, err := r.br.Peek(1); err == nil && b[0] == 0xEF {
			if b, err := r.br.Peek(3); err == nil && b[1] == 0xBB && b[2] == 0xBF {
				r.br.Discard(3)
			}
		}
	}
	if r.skipLF {
		r.skipLF = false
		b, err := r.br.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != '\n' {
			r.br.UnreadByte()
		}
	}
	for {
		buf, err := r.br.Peek(1)
		if err != nil {
			// End of stream: an unterminated last line is discarded with
			// the event it belongs to.
			return nil, err
		}
		buf, _ = r.br.Peek(r.br.Buffered())
		i := bytes.IndexByte(buf, '\n')
		scan := buf
		if i >= 0 {
			scan = buf[:i]
		}
		if j := bytes.IndexByte(scan, '\r'); j >= 0 {
			i = j
		}
		if i < 0 {
			if len(r.line)+len(buf) > r.max {
				return nil, fmt.Errorf("%w: line exceeds %d bytes", ErrEventTooLarge, r.max)
			}
			r.line = append(r.line, buf...)
			r.br.Discard(len(buf))
			continue
		}
		if len(r.line)+i > r.max {
			return nil, fmt.Errorf("%w: line exceeds %d bytes", ErrEventTooLarge, r.max)
		}
		// Copy the line out, as the buffer is refilled by the next read.
		r.line = append(r.line, buf[:i]...)
		line := r.line
		if buf[i] == '\r' {
			r.skipLF = true
		}
		r.br.Discard(i + 1)
		return line, nil
	}
}
