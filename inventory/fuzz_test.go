package inventory_test

import (
	"context"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
)

func FuzzParseClientMetadata(f *testing.F) {
	f.Add([]byte(`{"redirect_uris":["https://a/cb","https://a/cb"],"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]},"jwks_uri":"https://a/jwks"}`))
	f.Add([]byte(`{"jwks":null}`))
	f.Add([]byte(`{"jwks":{"keys":[{"kty":"RSA","n":"AQAB"},{"kty":"oct"}]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		md, err := inventory.ParseClientMetadata(doc)
		if err != nil {
			return
		}
		// What parsed once is recorded as a baseline and compares equal
		// to itself.
		inv, _ := inventory.New(store.NewMemory(), store.NewInventoryMemory(), &inventory.Options{BlockChangedClients: true})
		ctx := context.Background()
		if _, err := inv.RecordClientMetadata(ctx, "c", doc); err != nil {
			t.Fatalf("parsed but not recorded: %v", err)
		}
		ch, err := inv.RecordClientMetadata(ctx, "c", doc)
		if err != nil || ch.Flagged || inv.IsClientBlocked(ctx, "c") {
			t.Fatalf("same document flagged: %+v, %v", ch, err)
		}
		for i := 1; i < len(md.RedirectURIs); i++ {
			if md.RedirectURIs[i-1] >= md.RedirectURIs[i] {
				t.Fatalf("redirect URIs not sorted and unique: %q", md.RedirectURIs)
			}
		}
	})
}

func FuzzToolFingerprint(f *testing.F) {
	f.Add([]byte(`{"name":"read","inputSchema":{"type":"object"}}`))
	f.Add([]byte(`{"name":"a","description":"\u00e9\ud83d\ude00","annotations":{"readOnlyHint":true},"x":1e3}`))
	f.Add([]byte(`{"name":""}`))
	f.Fuzz(func(t *testing.T, def []byte) {
		c, d, name, err := inventory.ToolFingerprint(jsontext.Value(def))
		if err != nil {
			return
		}
		if name == "" || len(d) != 64 {
			t.Fatalf("name %q digest %q", name, d)
		}
		// The canonical form is a fixed point.
		c2, d2, name2, err := inventory.ToolFingerprint(jsontext.Value(c))
		if err != nil || string(c2) != string(c) || d2 != d || name2 != name {
			t.Fatalf("canonical form not stable: %q -> %q (%v)", c, c2, err)
		}
	})
}
