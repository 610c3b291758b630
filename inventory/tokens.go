package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// StoreTokenRevoker returns a RevocationHooks.RevokeTokens that revokes,
// in the identity store, every live access and refresh token matching:
// whole grant families for users, clients and identity providers (by the
// federated subject prefix), and the family or single token named by a
// grant. The store must implement store.GrantLister. The authorization
// server refuses revoked tokens from then on (its IsRevoked reads the
// same store), in this process and in any other sharing the database.
// now may be nil (time.Now).
func StoreTokenRevoker(ids store.Store, now func() time.Time) func(ctx context.Context, m Match) (int, error) {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context, m Match) (int, error) {
		gl, ok := ids.(store.GrantLister)
		if !ok {
			return 0, fmt.Errorf("inventory: %T cannot list tokens", ids)
		}
		if m.Grant != "" {
			n, err := ids.RevokeFamily(ctx, m.Grant)
			if err != nil {
				return n, err
			}
			if err := ids.RevokeAccessToken(ctx, m.Grant); err == nil {
				n++
			} else if !errors.Is(err, store.ErrNotFound) {
				return n, err
			}
			return n, nil
		}
		matches := func(subject, client string) bool {
			switch {
			case m.User != "":
				return subject == m.User
			case m.Client != "":
				return client == m.Client
			case m.IdP != "":
				return IdPOfSubject(subject, []string{m.IdP}) != ""
			}
			return false
		}
		t := now()
		toks, err := gl.ListAccessTokens(ctx, t)
		if err != nil {
			return 0, err
		}
		rts, err := gl.ListRefreshTokens(ctx, t)
		if err != nil {
			return 0, err
		}
		families := map[string]bool{}
		n := 0
		var errs []error
		for _, tok := range toks {
			if !matches(tok.Subject, tok.ClientID) {
				continue
			}
			if tok.FamilyID != "" {
				families[tok.FamilyID] = true
				continue
			}
			if err := ids.RevokeAccessToken(ctx, tok.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			n++
		}
		for _, rt := range rts {
			if matches(rt.Subject, rt.ClientID) {
				families[rt.FamilyID] = true
			}
		}
		for f := range families {
			c, err := ids.RevokeFamily(ctx, f)
			n += c
			if err != nil {
				errs = append(errs, err)
			}
		}
		return n, errors.Join(errs...)
	}
}

// RecordUpstreamCredential records that a principal holds its own
// credential for an upstream (metadata only, never the secret).
func (inv *Inventory) RecordUpstreamCredential(ctx context.Context, c *store.UpstreamCredential) error {
	if c.Principal == "" || c.Upstream == "" {
		return errors.New("inventory: upstream credential needs a principal and an upstream")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = inv.now()
	}
	if err := inv.st.PutUpstreamCredential(ctx, c); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}

// ForgetUpstreamCredential removes the record of a principal's credential
// for an upstream; a missing record is not an error.
func (inv *Inventory) ForgetUpstreamCredential(ctx context.Context, principal, upstream string) error {
	if err := inv.st.DeleteUpstreamCredential(ctx, principal, upstream); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}

// RecordIdentityProvider records a trusted identity provider (the
// gateway records its configured ones at start).
func (inv *Inventory) RecordIdentityProvider(ctx context.Context, p *store.IdentityProvider) error {
	if p.Issuer == "" {
		return errors.New("inventory: identity provider needs an issuer")
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = inv.now()
	}
	if err := inv.st.PutIdentityProvider(ctx, p); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}

// RecordUpstreams records the configured upstreams (the gateway records
// them at start), replacing those recorded before, if the inventory store
// keeps them (store.UpstreamRecords); it does nothing otherwise.
func (inv *Inventory) RecordUpstreams(ctx context.Context, recs []*store.UpstreamRecord) error {
	ur, ok := inv.st.(store.UpstreamRecords)
	if !ok {
		return nil
	}
	now := inv.now()
	for _, r := range recs {
		if r.UpdatedAt.IsZero() {
			r.UpdatedAt = now
		}
	}
	if err := ur.PutUpstreamRecords(ctx, recs); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}
