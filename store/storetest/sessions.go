package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// RunGatewaySessions checks a store.GatewaySessions implementation; open
// returns a fresh, empty one.
func RunGatewaySessions(t *testing.T, open func(t *testing.T) store.GatewaySessions) {
	ctx := context.Background()
	st := open(t)
	at := func(sec int) time.Time { return time.Unix(int64(1_800_000_000+sec), 123456789).UTC() }
	a := &store.GatewaySession{ID: "s1", Principal: "alice", ClientID: "app", TokenID: "tok1", Grant: "fam1",
		Transport: store.TransportStreamable, SourceAddr: "192.0.2.7", CreatedAt: at(0), LastSeen: at(0),
		ClientInit: `{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"app","version":"1"}}`}
	b := &store.GatewaySession{ID: "s2", Principal: "bob", Transport: store.TransportSSE, CreatedAt: at(10), LastSeen: at(10)}
	c := &store.GatewaySession{ID: "s3", Principal: "carol", Transport: store.TransportStdio, CreatedAt: at(20), LastSeen: at(20)}
	for _, s := range []*store.GatewaySession{c, a, b} {
		if err := st.PutGatewaySession(ctx, s); err != nil {
			t.Fatalf("PutGatewaySession(%s): %v", s.ID, err)
		}
	}
	list := func(ended bool) []*store.GatewaySession {
		t.Helper()
		l, err := st.ListGatewaySessions(ctx, ended)
		if err != nil {
			t.Fatalf("ListGatewaySessions: %v", err)
		}
		return l
	}
	if l := list(false); len(l) != 3 || !reflect.DeepEqual(l[0], a) || l[1].ID != "s2" || l[2].ID != "s3" {
		t.Fatalf("live sessions = %+v, want s1 (exactly as put), s2, s3", l)
	}

	// Touch only moves forward, and not on an ended session.
	if err := st.TouchGatewaySession(ctx, "s1", at(60)); err != nil {
		t.Fatal(err)
	}
	if err := st.TouchGatewaySession(ctx, "s1", at(30)); err != nil {
		t.Fatal(err)
	}
	if err := st.TouchGatewaySession(ctx, "unknown", at(30)); err != nil {
		t.Fatalf("TouchGatewaySession(unknown) = %v, want nil", err)
	}
	if l := list(false); !l[0].LastSeen.Equal(at(60)) {
		t.Fatalf("last seen = %v, want %v", l[0].LastSeen, at(60))
	}

	// Ending keeps the first end.
	if err := st.EndGatewaySession(ctx, "s2", at(70)); err != nil {
		t.Fatal(err)
	}
	if err := st.EndGatewaySession(ctx, "s2", at(80)); err != nil {
		t.Fatal(err)
	}
	if err := st.EndGatewaySession(ctx, "unknown", at(80)); err != nil {
		t.Fatalf("EndGatewaySession(unknown) = %v, want nil", err)
	}
	if err := st.TouchGatewaySession(ctx, "s2", at(90)); err != nil {
		t.Fatal(err)
	}
	if l := list(false); len(l) != 2 || l[0].ID != "s1" || l[1].ID != "s3" {
		t.Fatalf("live sessions after s2 ended = %+v", l)
	}
	all := list(true)
	if len(all) != 3 || all[1].ID != "s2" || !all[1].EndedAt.Equal(at(70)) || !all[1].LastSeen.Equal(at(10)) {
		t.Fatalf("all sessions = %+v, want s2 ended at %v, last seen %v", all, at(70), at(10))
	}

	// Sessions left open by a stopped process.
	if n, err := st.EndGatewaySessionsBefore(ctx, at(15), at(100)); err != nil || n != 1 {
		t.Fatalf("EndGatewaySessionsBefore = %d, %v; want 1 (s1)", n, err)
	}
	if l := list(false); len(l) != 1 || l[0].ID != "s3" {
		t.Fatalf("live sessions = %+v, want s3", l)
	}

	// Get returns a record, live or ended, or ErrNotFound.
	if got, err := st.GetGatewaySession(ctx, "s1"); err != nil || got.ClientInit != a.ClientInit || got.EndedAt.IsZero() {
		t.Fatalf("GetGatewaySession(s1) = %+v, %v; want s1 ended, with its client init", got, err)
	}
	if _, err := st.GetGatewaySession(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetGatewaySession(gone) = %v, want ErrNotFound", err)
	}

	// Retention.
	if n, err := st.DeleteEndedGatewaySessions(ctx, at(90)); err != nil || n != 1 {
		t.Fatalf("DeleteEndedGatewaySessions(90) = %d, %v; want 1 (s2)", n, err)
	}
	if l := list(true); len(l) != 2 || l[0].ID != "s1" || l[1].ID != "s3" {
		t.Fatalf("sessions after pruning = %+v, want s1, s3", l)
	}
	if n, err := st.DeleteEndedGatewaySessions(ctx, at(1000)); err != nil || n != 1 {
		t.Fatalf("DeleteEndedGatewaySessions(1000) = %d, %v; want 1 (s1; s3 is live)", n, err)
	}

	// Idle sessions: the last activity counts, not the creation.
	d := &store.GatewaySession{ID: "s4", Principal: "dan", CreatedAt: at(30), LastSeen: at(200)}
	e := &store.GatewaySession{ID: "s5", Principal: "erin", CreatedAt: at(40)}
	for _, s := range []*store.GatewaySession{d, e} {
		if err := st.PutGatewaySession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.EndIdleGatewaySessions(ctx, at(100), at(300)); err != nil || n != 2 {
		t.Fatalf("EndIdleGatewaySessions(100) = %d, %v; want 2 (s3, s5; s4 was seen at 200)", n, err)
	}
	if l := list(false); len(l) != 1 || l[0].ID != "s4" {
		t.Fatalf("live sessions after the idle ones ended = %+v, want s4", l)
	}
	if err := st.EndGatewaySession(ctx, "s4", at(310)); err != nil {
		t.Fatal(err)
	}
	if n, err := st.DeleteEndedGatewaySessions(ctx, at(1000)); err != nil || n != 3 {
		t.Fatalf("DeleteEndedGatewaySessions = %d, %v; want 3", n, err)
	}
	if err := st.PutGatewaySession(ctx, c); err != nil {
		t.Fatal(err)
	}

	// Put replaces.
	c2 := *c
	c2.SourceAddr = "198.51.100.1"
	if err := st.PutGatewaySession(ctx, &c2); err != nil {
		t.Fatal(err)
	}
	if l := list(true); len(l) != 1 || l[0].SourceAddr != "198.51.100.1" {
		t.Fatalf("after replace: %+v", l)
	}
}

// RunUpstreamRecords checks a store.UpstreamRecords implementation; open
// returns a fresh, empty one.
func RunUpstreamRecords(t *testing.T, open func(t *testing.T) store.UpstreamRecords) {
	ctx := context.Background()
	st := open(t)
	at := time.Unix(1_800_000_000, 5).UTC()
	fs := &store.UpstreamRecord{Name: "fs", Transport: "stdio", Command: []string{"mcp-fs", "--root", "/srv"}, CredentialType: "none", Owner: "platform-team", UpdatedAt: at}
	drive := &store.UpstreamRecord{Name: "drive", Transport: "streamable", URL: "https://drive.example/mcp", CredentialType: "oauth_user", PerUser: true, UpdatedAt: at}
	if err := st.PutUpstreamRecords(ctx, []*store.UpstreamRecord{fs, drive}); err != nil {
		t.Fatal(err)
	}
	got, err := st.ListUpstreamRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []*store.UpstreamRecord{drive, fs}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ListUpstreamRecords = %+v, want %+v", got, want)
	}
	// A later start replaces the set.
	if err := st.PutUpstreamRecords(ctx, []*store.UpstreamRecord{fs}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ListUpstreamRecords(ctx); len(got) != 1 || got[0].Name != "fs" {
		t.Fatalf("after replace: %+v", got)
	}
}
