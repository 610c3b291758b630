package gateway

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/oauth/authserver"
)

// Hooks are the gateway's callbacks for the controls and servers that are
// built before it and must call it back: the authorization server (token
// admission, client metadata, its events), the inventory and the revoker
// (their events) and the approval service (decisions). The wiring makes
// one Hooks, passes its methods to those constructors, and gives it to New
// in Options.Hooks, which binds it to the gateway it returns.
//
// Until it is bound, AdmitToken and ClientMetadata refuse, and the event
// callbacks drop what they are told.
type Hooks struct {
	g atomic.Pointer[Gateway]
}

// errNotReady is what a hook answers before New has bound it.
var errNotReady = errors.New("the gateway is not running yet")

// bind connects h to g; New calls it.
func (h *Hooks) bind(g *Gateway) { h.g.Store(g) }

// AdmitToken is the authorization server's check before it issues a token
// (authserver.Options.Admit): revoked users and clients, and clients whose
// metadata changed, get none.
func (h *Hooks) AdmitToken(ctx context.Context, subject, clientID string) error {
	g := h.g.Load()
	if g == nil {
		return errNotReady
	}
	return g.admit(ctx, subject, clientID)
}

// ClientMetadata records a client's registration or metadata document in
// the inventory (authserver.Options.OnClientMetadata).
func (h *Hooks) ClientMetadata(ctx context.Context, clientID string, doc []byte) error {
	g := h.g.Load()
	if g == nil {
		return errNotReady
	}
	return g.clientMetadata(ctx, clientID, doc)
}

// ClientKeys records the key set a client authenticated with (or that a
// re-check fetched) in the inventory and refuses a client whose keys
// changed while changed clients are blocked
// (authserver.Options.OnClientKeys).
func (h *Hooks) ClientKeys(ctx context.Context, k authserver.ClientKeys) error {
	g := h.g.Load()
	if g == nil {
		return errNotReady
	}
	return g.clientKeys(ctx, k)
}

// AuthEvent records what the authorization server did in the audit log
// (authserver.Options.OnEvent).
func (h *Hooks) AuthEvent(ctx context.Context, e authserver.Event) {
	if g := h.g.Load(); g != nil {
		g.authEvent(ctx, e)
	}
}

// InventoryEvent records inventory and revocation events in the audit log,
// and refreshes the catalogues when a tool is approved
// (inventory.Options.OnEvent, inventory.RevokerOptions.OnEvent).
func (h *Hooks) InventoryEvent(e inventory.Event) {
	if g := h.g.Load(); g != nil {
		g.inventoryEvent(e)
	}
}

// ApprovalDecided tells the caller waiting on an approval that it was
// decided (approval.Options.OnDecision).
func (h *Hooks) ApprovalDecided(a *approval.Approval) {
	if g := h.g.Load(); g != nil {
		g.ApprovalDecided(a)
	}
}

// OIDCSignIn keeps the ID token of a user's sign-in through the
// enterprise identity provider, sealed, for upstreams with enterprise
// credentials (authserver.OIDCLogin.OnSignIn).
func (h *Hooks) OIDCSignIn(ctx context.Context, subject, idToken, issuer string, expiry time.Time) {
	if g := h.g.Load(); g != nil {
		if err := g.KeepAssertion(ctx, subject, idToken, issuer, expiry); err != nil {
			g.logger.Warn("keeping the identity assertion of a sign-in", "error", err)
		}
	}
}
