package gateway

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/oauth/authserver"
)

// clientKeys is told by the authorization server of the key set of every
// private_key_jwt client authentication and of every key set a re-check
// fetched: the inventory fingerprints it, flags a change and, with
// inventory.block_changed_clients, refuses the client until an
// administrator approves it again.
func (g *Gateway) clientKeys(ctx context.Context, k authserver.ClientKeys) error {
	inv := g.opts.Inventory
	if inv == nil {
		return nil
	}
	ch, err := inv.RecordClientKeys(ctx, inventory.ClientKeys{ClientID: k.ClientID, JWKSURI: k.JWKSURI, JWKS: k.JWKS, Used: k.Used})
	if err != nil {
		return fmt.Errorf("recording client keys: %w", err)
	}
	if ch.Flagged {
		g.logger.Warn("client keys or metadata differ from the approved ones", "client_id", k.ClientID, "jwks_uri", k.JWKSURI, "key", k.Used, "blocked", ch.Blocked)
	}
	if inv.IsClientBlocked(ctx, k.ClientID) {
		return fmt.Errorf("its keys or metadata changed since they were approved and it is blocked until an administrator approves it again (mcpgate inventory approve-client %s)", k.ClientID)
	}
	return nil
}
