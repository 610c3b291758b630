package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// ClientDecision is what DecideClient did.
type ClientDecision struct {
	// Client is the client as it was before the decision.
	Client *store.Client
	// Detail describes the decision for the audit record: the client's
	// kind, new and former status, what approving or refusing did, and
	// the reason.
	Detail string
	// Err is set when the status was recorded but what goes with it
	// failed (approving the client's metadata, revoking its tokens).
	Err error
}

// DecideClient records an administrator's admission decision on a
// client (status store.ClientApproved or store.ClientRefused) by by.
// Approving also approves the client's current metadata in inv (when inv
// is not nil and the inventory knows the client); refusing revokes the
// client's live tokens in ids. It returns an error wrapping
// store.ErrNotFound for an unknown client, and any error recording the
// status; failures after the status is recorded are in the decision's
// Err. The command line (`mcpgate client approve|refuse`) and the web
// console both decide through it.
func DecideClient(ctx context.Context, ids store.Store, inv *Inventory, id, status, by, reason string, now func() time.Time) (*ClientDecision, error) {
	if status != store.ClientApproved && status != store.ClientRefused {
		return nil, fmt.Errorf("inventory: a client decision is %q or %q, not %q", store.ClientApproved, store.ClientRefused, status)
	}
	if now == nil {
		now = time.Now
	}
	c, err := ids.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := ids.SetClientStatus(ctx, id, status, by, now()); err != nil {
		return nil, err
	}
	d := &ClientDecision{Client: c, Detail: fmt.Sprintf("%s client %s (was %s)", c.Kind, status, cmp.Or(c.Status, "undecided"))}
	switch status {
	case store.ClientApproved:
		if inv == nil {
			break
		}
		switch err := inv.ApproveClient(ctx, id, by); {
		case err == nil:
			if r, err := inv.st.GetClientRecord(ctx, id); err == nil {
				d.Detail += fmt.Sprintf("; redirect URIs %s; keys %s", cmp.Or(strings.Join(r.RedirectURIs, ", "), "(none)"), cmp.Or(strings.Join(r.KeyThumbprints, ", "), "(none)"))
			}
		case !errors.Is(err, store.ErrNotFound):
			d.Err = fmt.Errorf("client approved, but approving its metadata in the inventory failed: %w", err)
		}
	case store.ClientRefused:
		n, err := StoreTokenRevoker(ids, now)(ctx, Match{Client: id})
		d.Detail += fmt.Sprintf("; %d live tokens revoked", n)
		if err != nil {
			d.Err = fmt.Errorf("client refused, but revoking its tokens failed: %w", err)
		}
	}
	if d.Err != nil {
		d.Detail += "; " + d.Err.Error()
	}
	if reason != "" {
		d.Detail += fmt.Sprintf("; reason %q", reason)
	}
	return d, nil
}
