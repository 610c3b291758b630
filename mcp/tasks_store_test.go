// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/schematest"
	"github.com/mcpgate/mcpgate/jsonrpc"
)

// fakeClock is a settable clock for stores.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClockStore(opts MemoryTaskStoreOptions) (TaskStore, *fakeClock) {
	clk := &fakeClock{now: time.Date(2025, 11, 25, 10, 30, 0, 0, time.UTC)}
	opts.Now = clk.Now
	return NewMemoryTaskStore(&opts), clk
}

func TestMemoryTaskStoreCreate(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		opts      MemoryTaskStoreOptions
		ttl       time.Duration
		wantTTL   int64
		wantPoll  int64
		wantPollZ bool
	}{
		{name: "defaults", wantTTL: 3600000, wantPoll: 1000},
		{name: "requested", ttl: 90 * time.Second, wantTTL: 90000, wantPoll: 1000},
		{name: "capped", opts: MemoryTaskStoreOptions{MaxTTL: time.Minute}, ttl: 48 * time.Hour, wantTTL: 60000, wantPoll: 1000},
		{name: "default above max", opts: MemoryTaskStoreOptions{DefaultTTL: time.Hour, MaxTTL: time.Minute}, wantTTL: 60000, wantPoll: 1000},
		{name: "custom default and poll", opts: MemoryTaskStoreOptions{DefaultTTL: 5 * time.Second, PollInterval: 250 * time.Millisecond}, wantTTL: 5000, wantPoll: 250},
		{name: "no poll suggestion", opts: MemoryTaskStoreOptions{PollInterval: -1}, wantTTL: 3600000, wantPollZ: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clk := newClockStore(tt.opts)
			rec, err := s.CreateTask(ctx, &NewTaskParams{Owner: "alice", Method: MethodToolsCall, TTL: tt.ttl})
			if err != nil {
				t.Fatal(err)
			}
			task := rec.Task()
			if task.Status != TaskStatusWorking || task.TaskID == "" || rec.Owner != "alice" || rec.Method != MethodToolsCall {
				t.Errorf("record = %+v", rec)
			}
			if task.TTL == nil || *task.TTL != tt.wantTTL {
				t.Errorf("ttl = %v, want %d", task.TTL, tt.wantTTL)
			}
			if tt.wantPollZ && task.PollInterval != 0 || !tt.wantPollZ && task.PollInterval != tt.wantPoll {
				t.Errorf("pollInterval = %d, want %d", task.PollInterval, tt.wantPoll)
			}
			if task.CreatedAt != "2025-11-25T10:30:00.000Z" || task.LastUpdatedAt != task.CreatedAt {
				t.Errorf("timestamps = %q, %q", task.CreatedAt, task.LastUpdatedAt)
			}
			if !rec.ExpiresAt().Equal(clk.Now().Add(time.Duration(tt.wantTTL) * time.Millisecond)) {
				t.Errorf("ExpiresAt = %v", rec.ExpiresAt())
			}
			b, err := json.Marshal(task)
			if err != nil {
				t.Fatal(err)
			}
			schematest.Validate(t, "Task", b)
		})
	}
	s := NewMemoryTaskStore(nil)
	if _, err := s.CreateTask(ctx, &NewTaskParams{Method: MethodToolsCall}); err == nil {
		t.Error("CreateTask without owner succeeded")
	}
	// Ids are unique and unguessable (random, 26 base32 characters).
	seen := map[string]bool{}
	for range 100 {
		rec, err := s.CreateTask(ctx, &NewTaskParams{Owner: "o"})
		if err != nil {
			t.Fatal(err)
		}
		if seen[rec.ID] || len(rec.ID) < 26 {
			t.Fatalf("weak or repeated id %q", rec.ID)
		}
		seen[rec.ID] = true
	}
}

func TestMemoryTaskStoreTransitions(t *testing.T) {
	ctx := context.Background()
	result := jsontext.Value(`{"content":[]}`)
	rpcErr := jsonrpc.NewError(jsonrpc.CodeInternalError, "boom")
	tests := []struct {
		name    string
		updates []TaskUpdate
		final   TaskStatus
	}{
		{"working to completed", []TaskUpdate{{Status: TaskStatusCompleted, Result: result}}, TaskStatusCompleted},
		{"working to failed", []TaskUpdate{{Status: TaskStatusFailed, StatusMessage: "boom", Error: rpcErr}}, TaskStatusFailed},
		{"working to cancelled", []TaskUpdate{{Status: TaskStatusCancelled, Error: rpcErr}}, TaskStatusCancelled},
		{"input required round trip", []TaskUpdate{{Status: TaskStatusInputRequired}, {Status: TaskStatusWorking}, {Status: TaskStatusCompleted, Result: result}}, TaskStatusCompleted},
		{"input required to failed", []TaskUpdate{{Status: TaskStatusInputRequired}, {Status: TaskStatusFailed, Result: result}}, TaskStatusFailed},
		{"input required to cancelled", []TaskUpdate{{Status: TaskStatusInputRequired}, {Status: TaskStatusCancelled, Error: rpcErr}}, TaskStatusCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clk := newClockStore(MemoryTaskStoreOptions{})
			rec, err := s.CreateTask(ctx, &NewTaskParams{Owner: "o"})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range tt.updates {
				clk.Advance(time.Second)
				got, err := s.UpdateTask(ctx, "o", rec.ID, &u)
				if err != nil {
					t.Fatalf("update to %s: %v", u.Status, err)
				}
				if got.Status != u.Status || !got.LastUpdatedAt.Equal(clk.Now()) || !got.CreatedAt.Equal(rec.CreatedAt) {
					t.Errorf("after update to %s: %+v", u.Status, got)
				}
			}
			got, err := s.GetTask(ctx, "o", rec.ID)
			if err != nil || got.Status != tt.final {
				t.Fatalf("GetTask = %+v, %v", got, err)
			}
			// Terminal tasks never change.
			for _, u := range []TaskUpdate{{Status: TaskStatusWorking}, {Status: TaskStatusInputRequired}, {Status: TaskStatusCompleted, Result: result}, {Status: TaskStatusCancelled, Error: rpcErr}} {
				after, err := s.UpdateTask(ctx, "o", rec.ID, &u)
				if !errors.Is(err, ErrTaskTerminal) {
					t.Errorf("update of terminal task to %s: err = %v", u.Status, err)
				}
				if after == nil || after.Status != tt.final {
					t.Errorf("terminal update returned %+v", after)
				}
			}
			again, _ := s.GetTask(ctx, "o", rec.ID)
			if again.Status != tt.final || !again.LastUpdatedAt.Equal(got.LastUpdatedAt) {
				t.Errorf("terminal task changed: %+v", again)
			}
		})
	}
}

func TestMemoryTaskStoreBadUpdates(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryTaskStore(nil)
	rec, _ := s.CreateTask(ctx, &NewTaskParams{Owner: "o"})
	res := jsontext.Value(`{}`)
	e := jsonrpc.NewError(1, "x")
	for _, u := range []*TaskUpdate{
		nil,
		{Status: "bogus"},
		{Status: TaskStatusWorking, Result: res},
		{Status: TaskStatusInputRequired, Error: e},
		{Status: TaskStatusCompleted},
		{Status: TaskStatusFailed, Result: res, Error: e},
	} {
		if _, err := s.UpdateTask(ctx, "o", rec.ID, u); err == nil {
			t.Errorf("UpdateTask(%+v) succeeded", u)
		}
	}
	if got, _ := s.GetTask(ctx, "o", rec.ID); got.Status != TaskStatusWorking {
		t.Errorf("status after rejected updates = %s", got.Status)
	}
}

func TestMemoryTaskStoreOwners(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryTaskStore(nil)
	rec, _ := s.CreateTask(ctx, &NewTaskParams{Owner: "alice"})
	if _, err := s.GetTask(ctx, "bob", rec.ID); !errors.Is(err, ErrTaskNotFound) {
		t.Errorf("GetTask by another owner: %v", err)
	}
	if _, err := s.GetTask(ctx, "alice", "no-such-task"); !errors.Is(err, ErrTaskNotFound) {
		t.Errorf("GetTask of unknown id: %v", err)
	}
	if _, err := s.UpdateTask(ctx, "bob", rec.ID, &TaskUpdate{Status: TaskStatusCancelled, Error: jsonrpc.NewError(1, "x")}); !errors.Is(err, ErrTaskNotFound) {
		t.Errorf("UpdateTask by another owner: %v", err)
	}
	if l, next, err := s.ListTasks(ctx, "bob", "", 10); err != nil || len(l) != 0 || next != "" {
		t.Errorf("ListTasks for another owner = %v, %q, %v", l, next, err)
	}
	if got, _ := s.GetTask(ctx, "alice", rec.ID); got.Status != TaskStatusWorking {
		t.Errorf("task changed by another owner: %+v", got)
	}
}

func TestMemoryTaskStoreExpiry(t *testing.T) {
	ctx := context.Background()
	s, clk := newClockStore(MemoryTaskStoreOptions{})
	short, _ := s.CreateTask(ctx, &NewTaskParams{Owner: "o", TTL: time.Minute})
	long, _ := s.CreateTask(ctx, &NewTaskParams{Owner: "o", TTL: time.Hour})
	clk.Advance(time.Minute - time.Millisecond)
	if _, err := s.GetTask(ctx, "o", short.ID); err != nil {
		t.Fatalf("task expired early: %v", err)
	}
	clk.Advance(time.Millisecond)
	if _, err := s.GetTask(ctx, "o", short.ID); !errors.Is(err, ErrTaskNotFound) {
		t.Errorf("expired task: %v", err)
	}
	if _, err := s.UpdateTask(ctx, "o", short.ID, &TaskUpdate{Status: TaskStatusInputRequired}); !errors.Is(err, ErrTaskNotFound) {
		t.Errorf("update of expired task: %v", err)
	}
	l, _, _ := s.ListTasks(ctx, "o", "", 10)
	if len(l) != 1 || l[0].ID != long.ID {
		t.Errorf("list after expiry = %v", l)
	}
	clk.Advance(time.Hour)
	// Listing skips expired tasks; DeleteExpiredTasks removes them.
	if l, _, _ := s.ListTasks(ctx, "o", "", 10); len(l) != 0 {
		t.Errorf("list after all expired = %v", l)
	}
	n, err := s.DeleteExpiredTasks(ctx, clk.Now())
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredTasks = %d, %v; want 1 (the other was deleted on lookup)", n, err)
	}
	// Creating sweeps expired tasks.
	s2, clk2 := newClockStore(MemoryTaskStoreOptions{})
	for range 3 {
		s2.CreateTask(ctx, &NewTaskParams{Owner: "o", TTL: time.Second})
	}
	clk2.Advance(2 * time.Minute)
	s2.CreateTask(ctx, &NewTaskParams{Owner: "o"})
	if n, _ := s2.DeleteExpiredTasks(ctx, clk2.Now()); n != 0 {
		t.Errorf("CreateTask did not sweep: %d left", n)
	}
}

func TestMemoryTaskStoreList(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryTaskStore(nil)
	var ids []string
	for i := range 7 {
		rec, _ := s.CreateTask(ctx, &NewTaskParams{Owner: "o"})
		ids = append(ids, rec.ID)
		s.CreateTask(ctx, &NewTaskParams{Owner: "other"})
		if i == 3 {
			if _, err := s.UpdateTask(ctx, "o", rec.ID, &TaskUpdate{Status: TaskStatusCompleted, Result: jsontext.Value(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		l, next, err := s.ListTasks(ctx, "o", cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range l {
			got = append(got, r.ID)
		}
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		cursor = next
	}
	if pages != 3 || strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("pages = %d, ids = %v, want %v", pages, got, ids)
	}
	// A full last page has no next cursor.
	if l, next, _ := s.ListTasks(ctx, "o", "", 7); len(l) != 7 || next != "" {
		t.Errorf("exact page: %d tasks, next %q", len(l), next)
	}
	for _, c := range []string{"!!", "eA", encodeTaskCursor(1 << 40), "dDA", "dA"} {
		if _, _, err := s.ListTasks(ctx, "o", c, 3); !errors.Is(err, ErrInvalidTaskCursor) {
			t.Errorf("cursor %q: err = %v", c, err)
		}
	}
}

func TestMemoryTaskStoreLimit(t *testing.T) {
	ctx := context.Background()
	s, clk := newClockStore(MemoryTaskStoreOptions{MaxTasksPerOwner: 2})
	for range 2 {
		if _, err := s.CreateTask(ctx, &NewTaskParams{Owner: "o", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateTask(ctx, &NewTaskParams{Owner: "o"}); !errors.Is(err, ErrTooManyTasks) {
		t.Errorf("third task: %v", err)
	}
	if _, err := s.CreateTask(ctx, &NewTaskParams{Owner: "p"}); err != nil {
		t.Errorf("another owner's task: %v", err)
	}
	clk.Advance(time.Minute)
	if _, err := s.CreateTask(ctx, &NewTaskParams{Owner: "o"}); err != nil {
		t.Errorf("task after the others expired: %v", err)
	}
}

func TestMemoryTaskStoreCopies(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryTaskStore(nil)
	rec, _ := s.CreateTask(ctx, &NewTaskParams{Owner: "o"})
	res := jsontext.Value(`{"a":1}`)
	s.UpdateTask(ctx, "o", rec.ID, &TaskUpdate{Status: TaskStatusCompleted, Result: res})
	res[2] = 'b'
	got, _ := s.GetTask(ctx, "o", rec.ID)
	got.Result[2] = 'c'
	again, _ := s.GetTask(ctx, "o", rec.ID)
	if string(again.Result) != `{"a":1}` {
		t.Errorf("stored result changed through a caller's slice: %s", again.Result)
	}
}

func TestSetRelatedTaskMeta(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, `{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"T"}}}`},
		{`{}`, `{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"T"}}}`},
		{`{"content":[],"isError":true}`, `{"content":[],"isError":true,"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"T"}}}`},
		{`{"_meta":{"a":1},"x":2}`, `{"_meta":{"a":1,"io.modelcontextprotocol/related-task":{"taskId":"T"}},"x":2}`},
		{`{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"old"}}}`, `{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"T"}}}`},
		{`{"_meta":null}`, `{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"T"}}}`},
	}
	for _, tt := range tests {
		got, err := setRelatedTaskMeta(jsontext.Value(tt.in), "T")
		if err != nil || string(got) != tt.want {
			t.Errorf("setRelatedTaskMeta(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`[]`, `"x"`, `{"_meta":[1]}`, `{"a":}`, `{`} {
		if got, err := setRelatedTaskMeta(jsontext.Value(bad), "T"); err == nil {
			t.Errorf("setRelatedTaskMeta(%s) = %s, want error", bad, got)
		}
	}
}

func FuzzDecodeTaskCursor(f *testing.F) {
	for _, s := range []string{"", encodeTaskCursor(1), encodeTaskCursor(1 << 63), "dDE", "!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		n, err := decodeTaskCursor(c)
		if err != nil {
			if !errors.Is(err, ErrInvalidTaskCursor) {
				t.Fatalf("cursor %q: unexpected error %v", c, err)
			}
			return
		}
		if n == 0 {
			t.Fatalf("cursor %q decodes to 0", c)
		}
		if m, err := decodeTaskCursor(encodeTaskCursor(n)); err != nil || m != n {
			t.Fatalf("cursor %d does not round-trip: %d, %v", n, m, err)
		}
	})
}

func FuzzSetRelatedTaskMeta(f *testing.F) {
	for _, s := range []string{`{}`, `{"_meta":{"a":1}}`, `{"content":[{"type":"text","text":"x"}]}`, `[]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := setRelatedTaskMeta(jsontext.Value(in), "T")
		if err != nil {
			return
		}
		var m struct {
			Meta Meta `json:"_meta"`
		}
		if err := json.Unmarshal(out, &m, json.RejectUnknownMembers(false)); err != nil {
			t.Fatalf("output %s of %q is not valid: %v", out, in, err)
		}
		if id, ok := m.Meta.RelatedTask(); !ok || id != "T" {
			t.Fatalf("output %s has no related task", out)
		}
	})
}

func BenchmarkMemoryTaskStore(b *testing.B) {
	ctx := context.Background()
	s := NewMemoryTaskStore(nil)
	res := jsontext.Value(`{"content":[{"type":"text","text":"ok"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		rec, err := s.CreateTask(ctx, &NewTaskParams{Owner: "o", Method: MethodToolsCall})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.UpdateTask(ctx, "o", rec.ID, &TaskUpdate{Status: TaskStatusCompleted, Result: res}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.GetTask(ctx, "o", rec.ID); err != nil {
			b.Fatal(err)
		}
	}
}
