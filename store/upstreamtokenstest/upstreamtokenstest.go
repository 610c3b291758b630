// Package upstreamtokenstest is a conformance test for
// store.UpstreamTokenStore implementations.
package upstreamtokenstest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// Run runs the conformance test against stores made by open; each call of
// open must return a new, empty store.
func Run(t *testing.T, open func(t *testing.T) store.UpstreamTokenStore) {
	t.Run("PutGetReplaceDelete", func(t *testing.T) { testLifecycle(t, open(t)) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, open(t)) })
	t.Run("List", func(t *testing.T) { testList(t, open(t)) })
}

func testLifecycle(t *testing.T, s store.UpstreamTokenStore) {
	ctx := context.Background()
	if _, err := s.GetUpstreamToken(ctx, "alice", "crm"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get from empty store: %v, want ErrNotFound", err)
	}
	now := time.Unix(1700000000, 123456789)
	in := &store.UpstreamToken{Principal: "alice", Upstream: "crm", Ciphertext: []byte{1, 2, 3, 0, 255}, UpdatedAt: now}
	if err := s.PutUpstreamToken(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.Ciphertext[0] = 9 // the store must have kept its own copy
	got, err := s.GetUpstreamToken(ctx, "alice", "crm")
	if err != nil {
		t.Fatal(err)
	}
	if got.Principal != "alice" || got.Upstream != "crm" || !bytes.Equal(got.Ciphertext, []byte{1, 2, 3, 0, 255}) || !got.UpdatedAt.Equal(now) {
		t.Fatalf("got %+v", got)
	}
	// Keys are exact: another principal or upstream sees nothing.
	for _, k := range [][2]string{{"bob", "crm"}, {"alice", "crm2"}, {"Alice", "crm"}} {
		if _, err := s.GetUpstreamToken(ctx, k[0], k[1]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get %v: %v, want ErrNotFound", k, err)
		}
	}
	// Replace.
	if err := s.PutUpstreamToken(ctx, &store.UpstreamToken{Principal: "alice", Upstream: "crm", Ciphertext: []byte("new"), UpdatedAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetUpstreamToken(ctx, "alice", "crm")
	if err != nil || string(got.Ciphertext) != "new" || !got.UpdatedAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("after replace: %+v, %v", got, err)
	}
	if err := s.DeleteUpstreamToken(ctx, "alice", "crm"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUpstreamToken(ctx, "alice", "crm"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.DeleteUpstreamToken(ctx, "alice", "crm"); err != nil {
		t.Fatalf("deleting a missing token: %v", err)
	}
}

func testInvalid(t *testing.T, s store.UpstreamTokenStore) {
	ctx := context.Background()
	for name, tok := range map[string]*store.UpstreamToken{
		"nil":           nil,
		"no principal":  {Upstream: "u", Ciphertext: []byte{1}},
		"no upstream":   {Principal: "p", Ciphertext: []byte{1}},
		"no ciphertext": {Principal: "p", Upstream: "u"},
	} {
		if err := s.PutUpstreamToken(ctx, tok); err == nil {
			t.Errorf("%s: stored", name)
		}
	}
}

func testList(t *testing.T, s store.UpstreamTokenStore) {
	ctx := context.Background()
	for _, k := range [][2]string{{"bob", "b"}, {"alice", "z"}, {"alice", "a"}} {
		if err := s.PutUpstreamToken(ctx, &store.UpstreamToken{Principal: k[0], Upstream: k[1], Ciphertext: []byte(k[0] + k[1]), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(ts []*store.UpstreamToken) (out []string) {
		for _, tok := range ts {
			out = append(out, tok.Principal+"/"+tok.Upstream)
		}
		return out
	}
	all, err := s.ListUpstreamTokens(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(all), []string{"alice/a", "alice/z", "bob/b"}; !slices.Equal(got, want) {
		t.Errorf("all: %v, want %v", got, want)
	}
	alice, err := s.ListUpstreamTokens(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(alice), []string{"alice/a", "alice/z"}; !slices.Equal(got, want) {
		t.Errorf("alice: %v, want %v", got, want)
	}
	none, err := s.ListUpstreamTokens(ctx, "carol")
	if err != nil || len(none) != 0 {
		t.Errorf("carol: %v, %v", names(none), err)
	}
}
