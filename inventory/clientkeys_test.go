package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
)

func keySet(keys ...string) []byte {
	return []byte(`{"keys":[` + strings.Join(keys, ",") + `]}`)
}

func tp(t *testing.T, key string) string {
	t.Helper()
	s, err := inventory.KeyThumbprint(jsontext.Value(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRemoteKeyDrift walks the keys behind a jwks_uri through first use,
// a swap (flagged, or blocked), approval and a swap back.
func TestRemoteKeyDrift(t *testing.T) {
	const id, uri = "https://app.example/client.json", "https://app.example/jwks.json"
	doc := []byte(`{"client_id":"` + id + `","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"` + uri + `"}`)
	for _, block := range []bool{false, true} {
		t.Run(fmt.Sprintf("block=%v", block), func(t *testing.T) {
			ctx := context.Background()
			inv, _, st, ev, clk := newInventory(t, inventory.Options{BlockChangedClients: block})
			k1, k2 := jwk(t), jwk(t)
			if _, err := inv.RecordClientMetadata(ctx, id, doc); err != nil {
				t.Fatal(err)
			}
			// First use: trusted on first use, recorded and audited.
			ch, err := inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: id, JWKSURI: uri, JWKS: keySet(k1), Used: tp(t, k1)})
			if err != nil || !ch.FirstSeen || ch.Flagged {
				t.Fatalf("first keys: %+v, %v", ch, err)
			}
			if e := ev.last(); e.Kind != inventory.EventClientKeysFirstSeen || !strings.Contains(e.Detail, tp(t, k1)) {
				t.Fatalf("first keys event %+v", e)
			}
			// The same keys again: nothing to say.
			n := len(ev.kinds())
			if ch, err := inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: id, JWKSURI: uri, JWKS: keySet(k1), Used: tp(t, k1)}); err != nil || ch.Flagged || ch.KeysChanged {
				t.Fatalf("same keys: %+v, %v", ch, err)
			}
			if len(ev.kinds()) != n {
				t.Fatalf("same keys emitted %v", ev.kinds()[n:])
			}

			// The key is swapped behind the same jwks_uri.
			clk.Add(time.Minute)
			ch, err = inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: id, JWKSURI: uri, JWKS: keySet(k2), Used: tp(t, k2)})
			if err != nil || !ch.Flagged || ch.Blocked != block || !slices.Equal(ch.AddedRemoteKeys, []string{tp(t, k2)}) || !slices.Equal(ch.RemovedRemoteKeys, []string{tp(t, k1)}) {
				t.Fatalf("swapped keys: %+v, %v", ch, err)
			}
			e := ev.last()
			if e.Kind != inventory.EventClientKeysChanged || !e.Flagged || e.Blocked != block || e.OldDigest != tp(t, k1) || e.NewDigest != tp(t, k2) ||
				!strings.Contains(e.Detail, "old "+tp(t, k1)) || !strings.Contains(e.Detail, "new "+tp(t, k2)) || !strings.Contains(e.Detail, "unapproved key") {
				t.Fatalf("swap event %+v", e)
			}
			if got := inv.IsClientBlocked(ctx, id); got != block {
				t.Fatalf("IsClientBlocked = %v, want %v", got, block)
			}
			// A new document (name changed only) does not clear the key flag.
			doc2 := []byte(strings.Replace(string(doc), `"redirect_uris"`, `"client_name":"renamed","redirect_uris"`, 1))
			if ch, err := inv.RecordClientMetadata(ctx, id, doc2); err != nil || !ch.Flagged || !ch.DocumentChanged {
				t.Fatalf("renamed document while keys differ: %+v, %v", ch, err)
			}
			g, err := inv.Graph(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c := g.Clients[slices.IndexFunc(g.Clients, func(c inventory.Client) bool { return c.ID == id })]
			if !c.Flagged || c.Approved == nil || !slices.Equal(c.Approved.RemoteKeyThumbprints, []string{tp(t, k1)}) || !slices.Equal(c.RemoteKeyThumbprints, []string{tp(t, k2)}) ||
				len(c.Drift) != 1 || c.Drift[0].What != "jwks_uri keys" || c.DocumentDigest == "" || c.DocumentDigest == c.Approved.DocumentDigest {
				t.Fatalf("graph client %+v (approved %+v)", c, c.Approved)
			}
			if !slices.ContainsFunc(c.History, func(h store.ClientChange) bool {
				return h.What == "jwks_uri keys" && slices.Equal(h.Old, []string{tp(t, k1)}) && slices.Equal(h.New, []string{tp(t, k2)})
			}) {
				t.Fatalf("history %+v lacks the key swap", c.History)
			}

			// Approval makes the new keys the baseline.
			if err := inv.ApproveClient(ctx, id, "sec-team"); err != nil {
				t.Fatal(err)
			}
			if inv.IsClientBlocked(ctx, id) {
				t.Fatal("blocked after approval")
			}
			rec, _ := st.GetClientRecord(ctx, id)
			if rec.Changed || !slices.Equal(rec.ApprovedRemoteKeyThumbprints, []string{tp(t, k2)}) || rec.ApprovedDocumentDigest != rec.DocumentDigest {
				t.Fatalf("approved record %+v", rec)
			}
			if ch, err := inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: id, JWKSURI: uri, JWKS: keySet(k2), Used: tp(t, k2)}); err != nil || ch.Flagged {
				t.Fatalf("approved keys: %+v, %v", ch, err)
			}
			// Swapped back to the old key: that is a change from the approved
			// keys too; a rotation that adds a key flags as well.
			if ch, _ := inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: id, JWKSURI: uri, JWKS: keySet(k2, k1), Used: tp(t, k2)}); !ch.Flagged {
				t.Fatalf("added key not flagged: %+v", ch)
			}
			if ch, _ := inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: id, JWKSURI: uri, JWKS: keySet(k2)}); ch.Flagged {
				t.Fatalf("keys back to approved still flagged: %+v", ch)
			}
			if e := ev.last(); e.Kind != inventory.EventClientKeysReverted {
				t.Fatalf("revert event %+v", e)
			}
		})
	}
}

// TestRegisteredKeyDrift: a pre-registered client's keys are fingerprinted
// at first use and a different registered key set is flagged; a used key
// outside the reported set is refused.
func TestRegisteredKeyDrift(t *testing.T) {
	ctx := context.Background()
	inv, _, _, ev, _ := newInventory(t, inventory.Options{BlockChangedClients: true})
	k1, k2 := jwk(t), jwk(t)
	ch, err := inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: "svc", JWKS: keySet(k1), Used: tp(t, k1)})
	if err != nil || !ch.FirstSeen || ch.Flagged {
		t.Fatalf("first registered keys: %+v, %v", ch, err)
	}
	if ev.last().Kind != inventory.EventClientKeysFirstSeen {
		t.Fatalf("event %+v", ev.last())
	}
	ch, err = inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: "svc", JWKS: keySet(k2), Used: tp(t, k2)})
	if err != nil || !ch.Flagged || !ch.Blocked || !inv.IsClientBlocked(ctx, "svc") {
		t.Fatalf("swapped registered keys: %+v, %v", ch, err)
	}
	if e := ev.last(); e.Kind != inventory.EventClientKeysChanged || !e.Blocked || !strings.Contains(e.Detail, "approve-client svc") {
		t.Fatalf("event %+v", e)
	}
	if _, err := inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: "svc", JWKS: keySet(k1), Used: tp(t, k2)}); err == nil {
		t.Fatal("a used key outside the key set was accepted")
	}
	if _, err := inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: "svc", JWKS: []byte(`{"keys":[1]}`)}); err == nil {
		t.Fatal("a malformed key set was accepted")
	}
}

// TestDocumentDigestCanonical: member order and whitespace are not a
// change of the document; any member is.
func TestDocumentDigestCanonical(t *testing.T) {
	a, _ := inventory.DocumentDigest([]byte(`{"b":1,"a":"x"}`))
	b, _ := inventory.DocumentDigest([]byte("{ \"a\" : \"x\",\n \"b\" : 1.0 }"))
	c, _ := inventory.DocumentDigest([]byte(`{"a":"x","b":2}`))
	if a != b || a == c || len(a) != 64 {
		t.Fatalf("digests %s %s %s", a, b, c)
	}
	if _, err := inventory.DocumentDigest([]byte(`{"a":1,"a":2}`)); err == nil {
		t.Fatal("duplicate member accepted")
	}
	ctx := context.Background()
	inv, _, _, ev, _ := newInventory(t, inventory.Options{})
	base := []string{"https://app.example/cb"}
	k := jwk(t)
	if _, err := inv.RecordClientMetadata(ctx, "c", clientDoc("App", base, k)); err != nil {
		t.Fatal(err)
	}
	n := len(ev.kinds())
	spaced := []byte(strings.ReplaceAll(string(clientDoc("App", base, k)), ",", " ,\n "))
	if ch, err := inv.RecordClientMetadata(ctx, "c", spaced); err != nil || ch.DocumentChanged {
		t.Fatalf("whitespace-only change: %+v, %v", ch, err)
	}
	if len(ev.kinds()) != n {
		t.Fatalf("whitespace-only change emitted %v", ev.kinds()[n:])
	}
}

// TestRecheckClients: a round checks the clients seen recently, the most
// recent first, bounded in count; failures are counted, not fatal.
func TestRecheckClients(t *testing.T) {
	ctx := context.Background()
	inv, _, _, _, clk := newInventory(t, inventory.Options{})
	for i, id := range []string{"old", "a", "b", "c"} {
		if err := inv.TouchClient(ctx, id); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			clk.Add(40 * 24 * time.Hour)
		}
		clk.Add(time.Hour)
	}
	var got []string
	check := func(_ context.Context, id string) error {
		got = append(got, id)
		if id == "b" {
			return errors.New("document gone")
		}
		return nil
	}
	res, err := inv.RecheckClients(ctx, check, nil)
	if err != nil || !slices.Equal(got, []string{"c", "b", "a"}) || res.Checked != 2 || res.Failed != 1 || len(res.Errors) != 1 {
		t.Fatalf("round: checked %v, %+v, %v", got, res, err)
	}
	got = nil
	if res, _ := inv.RecheckClients(ctx, check, &inventory.RecheckOptions{MaxClients: 1}); !slices.Equal(got, []string{"c"}) || res.Checked != 1 {
		t.Fatalf("bounded round: checked %v, %+v", got, res)
	}
	got = nil
	if _, _ = inv.RecheckClients(ctx, check, &inventory.RecheckOptions{SeenWithin: 100 * 24 * time.Hour}); len(got) != 4 {
		t.Fatalf("wider round checked %v", got)
	}
}
