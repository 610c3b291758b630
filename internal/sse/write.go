package sse

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
)

// ContentType is the media type of an event stream.
const ContentType = "text/event-stream"

// AppendEvent appends the wire form of e to dst: an "event" line when Type
// is set, an "id" line when ID is set, a "retry" line when HasRetry is set or
// Retry is positive, one "data" line per line of Data (at least one, so an
// event with empty data still dispatches), and the blank line that ends the
// event. Line breaks in Data (CRLF, LF or CR) split it into several data
// lines, which a reader joins with LF. It fails, leaving dst unchanged, when
// Type or ID contains a line break, or ID contains NUL.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if strings.ContainsAny(e.Type, "\r\n") {
		return dst, errors.New("sse: event type contains a line break")
	}
	if strings.ContainsAny(e.ID, "\r\n\x00") {
		return dst, errors.New("sse: event id contains a line break or NUL")
	}
	if e.Type != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, e.Type...)
		dst = append(dst, '\n')
	}
	if e.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, e.ID...)
		dst = append(dst, '\n')
	}
	if e.HasRetry || e.Retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, e.Retry.Milliseconds(), 10)
		dst = append(dst, '\n')
	}
	data := e.Data
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			dst = appendData(dst, data)
			break
		}
		dst = appendData(dst, data[:i])
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n'), nil
}

func appendData(dst, line []byte) []byte {
	if len(line) == 0 {
		return append(dst, "data:\n"...)
	}
	dst = append(dst, "data: "...)
	dst = append(dst, line...)
	return append(dst, '\n')
}

// AppendComment appends a comment line followed by a blank line, which
// readers ignore; servers send it to keep idle connections open. Line breaks
// in text are replaced by spaces.
func AppendComment(dst []byte, text string) []byte {
	dst = append(dst, ':')
	if text != "" {
		dst = append(dst, ' ')
		for i := 0; i < len(text); i++ {
			c := text[i]
			if c == '\r' || c == '\n' {
				c = ' '
			}
			dst = append(dst, c)
		}
	}
	return append(dst, '\n', '\n')
}

// WriteEvent writes e to w in one Write call. See AppendEvent.
func WriteEvent(w io.Writer, e Event) error {
	var stack [512]byte
	b, err := AppendEvent(stack[:0], e)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
