package mcp

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
)

// An EventStore keeps the server-sent events of Streamable HTTP sessions so
// that a client whose SSE connection broke can resume the stream with an
// HTTP GET carrying Last-Event-ID, as the spec's "Resumability and
// Redelivery" section describes.
//
// Events are addressed by session id, stream id and a sequence number. The
// transport numbers the events of each stream 1, 2, 3, ... and appends them
// in that order; the event id it sends to the client encodes the stream id
// and the sequence number, so that a Last-Event-ID names the stream it
// belongs to and replay never crosses streams.
//
// Implementations must be safe for concurrent use.
type EventStore interface {
	// Append stores data as event seq of the stream. data is only valid
	// during the call: implementations that keep it must copy it.
	Append(ctx context.Context, sessionID, streamID string, seq int64, data []byte) error
	// After returns the stored events of the stream that come after event
	// seq, in order and without gaps: the first yielded event is seq+1. It
	// yields nothing if there are none. If events after seq were discarded
	// it yields ErrEventsPurged. The yielded data must not be modified.
	After(ctx context.Context, sessionID, streamID string, seq int64) iter.Seq2[[]byte, error]
	// SessionClosed discards everything stored for the session.
	SessionClosed(ctx context.Context, sessionID string) error
}

// ErrEventsPurged is reported by an EventStore when events a client asks to
// replay are no longer stored.
var ErrEventsPurged = errors.New("mcp: events to replay are no longer stored")

// MemoryEventStoreOptions configure a MemoryEventStore. The zero value
// selects the defaults.
type MemoryEventStoreOptions struct {
	// MaxStreamBytes bounds the event data kept for one stream; the oldest
	// events of the stream are dropped beyond it. Zero means 1 MiB.
	MaxStreamBytes int
	// MaxSessionBytes bounds the event data kept for one session; the oldest
	// events of the session are dropped beyond it. Zero means 4 MiB.
	MaxSessionBytes int
	// MaxBytes bounds the event data kept for all sessions together; the
	// oldest events are dropped beyond it. Zero means 256 MiB.
	MaxBytes int
}

// MemoryEventStore is an EventStore that keeps events in memory, bounded per
// stream, per session and in total. When a bound is reached the oldest
// events go first; a client that wants to resume past them gets an error
// rather than a silent gap.
type MemoryEventStore struct {
	maxStream  int
	maxSession int
	maxTotal   int

	mu       sync.Mutex
	sessions map[string]*memSession
	bytes    int
	// order lists every stored event, oldest first, for the total bound.
	// Entries of events dropped for another reason stay until they reach
	// the front (see memEntry.live).
	order []memEntry
	live  int // events stored, all sessions together
}

type memSession struct {
	id      string
	closed  bool
	streams map[string]*memStream
	bytes   int
	count   int        // events stored
	order   []memEntry // the session's events, oldest first (some stale)
	// emptied lists streams whose events were all dropped, oldest first.
	// They are kept (as tombstones, so that After reports the purge) up to
	// maxTombstones.
	emptied []*memStream
}

type memStream struct {
	id     string
	first  int64 // sequence number of events[0]
	events [][]byte
	bytes  int
}

// memEntry names one stored event.
type memEntry struct {
	sess *memSession
	st   *memStream
	seq  int64
}

// live reports whether the event is still stored.
func (e memEntry) live() bool {
	return !e.sess.closed && e.seq >= e.st.first && e.seq < e.st.first+int64(len(e.st.events))
}

// NewMemoryEventStore returns an empty in-memory event store.
func NewMemoryEventStore(opts *MemoryEventStoreOptions) *MemoryEventStore {
	s := &MemoryEventStore{maxStream: 1 << 20, maxSession: 4 << 20, maxTotal: 256 << 20, sessions: make(map[string]*memSession)}
	if opts != nil {
		if opts.MaxStreamBytes > 0 {
			s.maxStream = opts.MaxStreamBytes
		}
		if opts.MaxSessionBytes > 0 {
			s.maxSession = opts.MaxSessionBytes
		}
		if opts.MaxBytes > 0 {
			s.maxTotal = opts.MaxBytes
		}
	}
	return s
}

// Append implements EventStore.
func (s *MemoryEventStore) Append(_ context.Context, sessionID, streamID string, seq int64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[sessionID]
	if sess == nil {
		sess = &memSession{id: sessionID, streams: make(map[string]*memStream)}
		s.sessions[sessionID] = sess
	}
	st := sess.streams[streamID]
	if st == nil {
		st = &memStream{id: streamID, first: seq}
		sess.streams[streamID] = st
	}
	if next := st.first + int64(len(st.events)); seq != next {
		return fmt.Errorf("mcp: event %d of stream %q appended out of order (expected %d)", seq, streamID, next)
	}
	st.events = append(st.events, append([]byte(nil), data...))
	st.bytes += len(data)
	sess.bytes += len(data)
	s.bytes += len(data)
	e := memEntry{sess, st, seq}
	sess.order = append(sess.order, e)
	s.order = append(s.order, e)
	sess.count++
	s.live++
	for st.bytes > s.maxStream && len(st.events) > 0 {
		s.dropOldest(sess, st)
	}
	for sess.bytes > s.maxSession && len(sess.order) > 0 {
		e := sess.order[0]
		sess.order = sess.order[1:]
		if e.live() {
			s.dropOldest(sess, e.st)
		}
	}
	for s.bytes > s.maxTotal && len(s.order) > 0 {
		e := s.order[0]
		s.order = s.order[1:]
		if e.live() {
			s.dropOldest(e.sess, e.st)
		}
	}
	// Forget entries of dropped events once they are most of the list.
	if len(s.order) > 2*s.live+1024 {
		s.order = slices.DeleteFunc(slices.Clone(s.order), func(e memEntry) bool { return !e.live() })
	}
	if len(sess.order) > 2*sess.count+1024 {
		sess.order = slices.DeleteFunc(slices.Clone(sess.order), func(e memEntry) bool { return !e.live() })
	}
	return nil
}

// dropOldest discards the oldest event of st, whose entries in the order
// lists become stale.
func (s *MemoryEventStore) dropOldest(sess *memSession, st *memStream) {
	if len(st.events) == 0 {
		return
	}
	n := len(st.events[0])
	st.events[0] = nil
	st.events = st.events[1:]
	st.first++
	st.bytes -= n
	sess.bytes -= n
	s.bytes -= n
	sess.count--
	s.live--
	if len(st.events) == 0 {
		st.events = nil
		sess.emptied = append(sess.emptied, st)
		if len(sess.emptied) > maxTombstones {
			old := sess.emptied[0]
			sess.emptied[0] = nil
			sess.emptied = sess.emptied[1:]
			if len(old.events) == 0 && sess.streams[old.id] == old {
				delete(sess.streams, old.id)
			}
		}
	}
}

// maxTombstones bounds the emptied streams a session remembers.
const maxTombstones = 1024

// After implements EventStore.
func (s *MemoryEventStore) After(_ context.Context, sessionID, streamID string, seq int64) iter.Seq2[[]byte, error] {
	s.mu.Lock()
	var (
		events [][]byte
		err    error
	)
	st := (*memStream)(nil)
	if sess := s.sessions[sessionID]; sess != nil {
		st = sess.streams[streamID]
	}
	switch {
	case st == nil:
		if seq > 0 {
			err = ErrEventsPurged
		}
	case seq < st.first-1:
		err = ErrEventsPurged
	case seq > st.first+int64(len(st.events))-1:
		err = fmt.Errorf("mcp: event %d of stream %q was never sent", seq, streamID)
	default:
		// The slice header is copied; stored event data is never modified.
		events = append([][]byte(nil), st.events[seq-st.first+1:]...)
	}
	s.mu.Unlock()
	return func(yield func([]byte, error) bool) {
		if err != nil {
			yield(nil, err)
			return
		}
		for _, e := range events {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// SessionClosed implements EventStore.
func (s *MemoryEventStore) SessionClosed(_ context.Context, sessionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[sessionID]
	if sess == nil {
		return nil
	}
	delete(s.sessions, sessionID)
	sess.closed = true // its entries in the total order are now stale
	for _, st := range sess.streams {
		st.events = nil // release the data now, not when the entries go
	}
	sess.order = nil
	s.bytes -= sess.bytes
	s.live -= sess.count
	return nil
}
