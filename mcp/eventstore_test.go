package mcp

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func collectEvents(t *testing.T, s EventStore, sess, stream string, after int64) ([]string, error) {
	t.Helper()
	var out []string
	for data, err := range s.After(context.Background(), sess, stream, after) {
		if err != nil {
			return out, err
		}
		out = append(out, string(data))
	}
	return out, nil
}

func TestMemoryEventStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryEventStore(nil)
	for i := int64(1); i <= 3; i++ {
		if err := s.Append(ctx, "s1", "1", i, []byte(fmt.Sprintf("a%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	buf := []byte("b1")
	s.Append(ctx, "s1", "2", 1, buf)
	buf[0] = 'X' // the store must have copied it
	s.Append(ctx, "s2", "1", 1, []byte("other session"))

	tests := []struct {
		sess, stream string
		after        int64
		want         string
		err          bool
	}{
		{"s1", "1", 0, "[a1 a2 a3]", false},
		{"s1", "1", 1, "[a2 a3]", false},
		{"s1", "1", 3, "[]", false},
		{"s1", "1", 4, "[]", true},    // never sent
		{"s1", "2", 0, "[b1]", false}, // a copy, and only its own stream
		{"s1", "3", 0, "[]", false},   // no events yet
		{"s1", "3", 2, "[]", true},    // events gone
		{"s2", "1", 0, "[other session]", false},
		{"s3", "1", 0, "[]", false},
	}
	for _, tt := range tests {
		got, err := collectEvents(t, s, tt.sess, tt.stream, tt.after)
		if (err != nil) != tt.err || fmt.Sprint(got) != tt.want && err == nil {
			t.Errorf("After(%s, %s, %d) = %v, %v; want %s (error %v)", tt.sess, tt.stream, tt.after, got, err, tt.want, tt.err)
		}
	}
	if err := s.Append(ctx, "s1", "1", 7, []byte("gap")); err == nil {
		t.Error("out-of-order append accepted")
	}
	s.SessionClosed(ctx, "s1")
	if _, err := collectEvents(t, s, "s1", "1", 1); !errors.Is(err, ErrEventsPurged) {
		t.Errorf("after SessionClosed: %v, want ErrEventsPurged", err)
	}
	if got, _ := collectEvents(t, s, "s2", "1", 0); len(got) != 1 {
		t.Errorf("closing s1 touched s2: %v", got)
	}
}

func TestMemoryEventStoreBounds(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryEventStore(&MemoryEventStoreOptions{MaxStreamBytes: 10, MaxSessionBytes: 20})
	for i := int64(1); i <= 4; i++ {
		s.Append(ctx, "s", "1", i, []byte("aaaa")) // 4 bytes each: the stream keeps 2
	}
	if got, err := collectEvents(t, s, "s", "1", 2); err != nil || len(got) != 2 {
		t.Errorf("after 2: %v, %v; want the last 2 events", got, err)
	}
	if _, err := collectEvents(t, s, "s", "1", 1); !errors.Is(err, ErrEventsPurged) {
		t.Errorf("after 1: %v, want ErrEventsPurged", err)
	}
	// The session bound drops the oldest events of the session, whatever
	// their stream.
	for i := int64(1); i <= 4; i++ {
		s.Append(ctx, "s", "2", i, []byte("bbbb"))
	}
	for i := int64(1); i <= 2; i++ {
		s.Append(ctx, "s", "3", i, []byte("cccc"))
	}
	// Streams 2 and 3 keep 8 bytes each, so stream 1 lost its oldest
	// remaining event to the session bound.
	total := 0
	for _, st := range []string{"1", "2", "3"} {
		for seq := int64(0); seq <= 4; seq++ {
			if got, err := collectEvents(t, s, "s", st, seq); err == nil {
				for _, e := range got {
					total += len(e)
				}
				break
			}
		}
	}
	if total > 20 {
		t.Errorf("session keeps %d bytes, over the bound of 20", total)
	}
	if got, err := collectEvents(t, s, "s", "3", 0); err != nil || len(got) != 2 {
		t.Errorf("newest stream: %v, %v; want both events", got, err)
	}
	if _, err := collectEvents(t, s, "s", "1", 2); !errors.Is(err, ErrEventsPurged) {
		t.Errorf("oldest stream: %v, want ErrEventsPurged", err)
	}
	if got, err := collectEvents(t, s, "s", "1", 3); err != nil || len(got) != 1 {
		t.Errorf("oldest stream after 3: %v, %v; want its last event", got, err)
	}
	// An event larger than the stream bound is not kept, and resuming the
	// stream reports that rather than replaying nothing.
	s.Append(ctx, "s", "4", 1, []byte("0123456789abc"))
	for _, after := range []int64{0, 1} {
		if _, err := collectEvents(t, s, "s", "4", after); !errors.Is(err, ErrEventsPurged) && after == 0 {
			t.Errorf("after %d, past a dropped event: %v, want ErrEventsPurged", after, err)
		}
	}
	// The stream goes on with its next event.
	if err := s.Append(ctx, "s", "4", 2, []byte("d")); err != nil {
		t.Fatal(err)
	}
	if got, err := collectEvents(t, s, "s", "4", 1); err != nil || fmt.Sprint(got) != "[d]" {
		t.Errorf("after 1: %v, %v", got, err)
	}
}

func BenchmarkMemoryEventStoreAppend(b *testing.B) {
	ctx := context.Background()
	s := NewMemoryEventStore(nil)
	data := make([]byte, 200)
	b.ReportAllocs()
	var seq int64
	for b.Loop() {
		seq++
		s.Append(ctx, "s", "1", seq, data)
	}
}

func TestMemoryEventStoreTotalBound(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryEventStore(&MemoryEventStoreOptions{MaxBytes: 100})
	for i := range 10 {
		sess := fmt.Sprintf("s%d", i)
		for seq := int64(1); seq <= 2; seq++ {
			if err := s.Append(ctx, sess, "1", seq, make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 200 bytes went in; the oldest sessions lost their events.
	if _, err := collectEvents(t, s, "s0", "1", 0); !errors.Is(err, ErrEventsPurged) {
		t.Errorf("oldest session: %v, want ErrEventsPurged", err)
	}
	if got, err := collectEvents(t, s, "s9", "1", 0); err != nil || len(got) != 2 {
		t.Errorf("newest session: %v, %v", got, err)
	}
	kept := 0
	for i := range 10 {
		if got, err := collectEvents(t, s, fmt.Sprintf("s%d", i), "1", 0); err == nil {
			kept += len(got)
		} else if got, err := collectEvents(t, s, fmt.Sprintf("s%d", i), "1", 1); err == nil {
			kept += len(got)
		}
	}
	if kept != 10 {
		t.Errorf("%d events kept, want 10 (100 bytes)", kept)
	}
	// Closing sessions frees their share.
	for i := range 10 {
		s.SessionClosed(ctx, fmt.Sprintf("s%d", i))
	}
	s.mu.Lock()
	bytes, live := s.bytes, s.live
	s.mu.Unlock()
	if bytes != 0 || live != 0 {
		t.Errorf("after closing every session: %d bytes, %d events", bytes, live)
	}
	// Many appends and closes keep the bookkeeping bounded.
	for i := range 5000 {
		sess := fmt.Sprintf("t%d", i)
		s.Append(ctx, sess, "1", 1, []byte("x"))
		s.SessionClosed(ctx, sess)
	}
	s.mu.Lock()
	n := len(s.order)
	s.mu.Unlock()
	if n > 2000 {
		t.Errorf("%d order entries kept for no stored event", n)
	}
}
