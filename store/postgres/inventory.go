package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

var (
	_ store.InventoryStore = (*Store)(nil)
	_ store.GrantLister    = (*Store)(nil)
)

const clientRecordCols = `client_id, metadata, metadata_digest, redirect_uris, key_thumbprints, jwks_uri, approved_redirect_uris, approved_key_thumbprints, approved_jwks_uri, changed, changed_at, approved_at, approved_by, first_seen, last_seen, ` +
	`document_digest, approved_document_digest, remote_keys_uri, remote_key_thumbprints, approved_remote_key_thumbprints, remote_keys_fetched_at, remote_keys_approved_at, history`

// clientChange is the stored form of a store.ClientChange (times in Unix
// nanoseconds, as every other time in this store).
type clientChange struct {
	At   int64    `json:"at"`
	What string   `json:"what"`
	Old  []string `json:"old,omitempty"`
	New  []string `json:"new,omitempty"`
	By   string   `json:"by,omitempty"`
}

func encodeHistory(what string, h []store.ClientChange) (string, error) {
	out := make([]clientChange, len(h))
	for i, c := range h {
		out[i] = clientChange{At: ts(c.At), What: c.What, Old: c.Old, New: c.New, By: c.By}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("%s: history: %w", what, err)
	}
	return string(b), nil
}

func decodeHistory(what, s string) ([]store.ClientChange, error) {
	var in []clientChange
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("%s: stored history: %w", what, err)
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]store.ClientChange, len(in))
	for i, c := range in {
		out[i] = store.ClientChange{At: fromTS(c.At), What: c.What, Old: c.Old, New: c.New, By: c.By}
	}
	return out, nil
}

// upsert returns an INSERT of cols into table that replaces the row with
// the same key (the first nKey columns) if there is one.
func upsert(table, cols string, nKey int) string {
	list := splitCols(cols)
	return `INSERT INTO ` + table + ` (` + cols + `) VALUES (` + params(1, len(list)) + `)
		ON CONFLICT (` + strings.Join(list[:nKey], ", ") + `) DO UPDATE SET ` + upsertSet(list[nKey:])
}

// PutClientRecord implements store.InventoryStore.
func (s *Store) PutClientRecord(ctx context.Context, r *store.ClientRecord) error {
	what := fmt.Sprintf("client record %q", r.ClientID)
	var lists [6]string
	for i, l := range [][]string{r.RedirectURIs, r.KeyThumbprints, r.ApprovedRedirectURIs, r.ApprovedKeyThumbprints, r.RemoteKeyThumbprints, r.ApprovedRemoteKeyThumbprints} {
		var err error
		if lists[i], err = jsonList(what, l); err != nil {
			return err
		}
	}
	history, err := encodeHistory(what, r.History)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, upsert("inventory_clients", clientRecordCols, 1),
		r.ClientID, r.Metadata, r.MetadataDigest, lists[0], lists[1], r.JWKSURI, lists[2], lists[3], r.ApprovedJWKSURI,
		r.Changed, ts(r.ChangedAt), ts(r.ApprovedAt), r.ApprovedBy, ts(r.FirstSeen), ts(r.LastSeen),
		r.DocumentDigest, r.ApprovedDocumentDigest, r.RemoteKeysURI, lists[4], lists[5], ts(r.RemoteKeysFetchedAt), ts(r.RemoteKeysApprovedAt), history)
	return wrap(what, err)
}

func scanClientRecord(sc pgx.Row) (*store.ClientRecord, error) {
	var r store.ClientRecord
	var lists [6]string
	var history string
	var changedAt, approvedAt, first, last, fetched, remoteApproved int64
	if err := sc.Scan(&r.ClientID, &r.Metadata, &r.MetadataDigest, &lists[0], &lists[1], &r.JWKSURI, &lists[2], &lists[3], &r.ApprovedJWKSURI,
		&r.Changed, &changedAt, &approvedAt, &r.ApprovedBy, &first, &last,
		&r.DocumentDigest, &r.ApprovedDocumentDigest, &r.RemoteKeysURI, &lists[4], &lists[5], &fetched, &remoteApproved, &history); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("client record %q", r.ClientID)
	for i, dst := range []*[]string{&r.RedirectURIs, &r.KeyThumbprints, &r.ApprovedRedirectURIs, &r.ApprovedKeyThumbprints, &r.RemoteKeyThumbprints, &r.ApprovedRemoteKeyThumbprints} {
		var err error
		if *dst, err = parseList(what, lists[i]); err != nil {
			return nil, err
		}
	}
	var err error
	if r.History, err = decodeHistory(what, history); err != nil {
		return nil, err
	}
	r.ChangedAt, r.ApprovedAt, r.FirstSeen, r.LastSeen = fromTS(changedAt), fromTS(approvedAt), fromTS(first), fromTS(last)
	r.RemoteKeysFetchedAt, r.RemoteKeysApprovedAt = fromTS(fetched), fromTS(remoteApproved)
	return &r, nil
}

// GetClientRecord implements store.InventoryStore.
func (s *Store) GetClientRecord(ctx context.Context, clientID string) (*store.ClientRecord, error) {
	r, err := scanClientRecord(s.pool.QueryRow(ctx, `SELECT `+clientRecordCols+` FROM inventory_clients WHERE client_id = $1`, clientID))
	if err != nil {
		return nil, wrap(fmt.Sprintf("client record %q", clientID), err)
	}
	return r, nil
}

// ListClientRecords implements store.InventoryStore.
func (s *Store) ListClientRecords(ctx context.Context) ([]*store.ClientRecord, error) {
	return queryAll(ctx, s.pool, "client records", scanClientRecord, `SELECT `+clientRecordCols+` FROM inventory_clients ORDER BY client_id COLLATE "C"`)
}

const toolRecordCols = `upstream, name, definition, digest, approved_definition, approved_digest, changed, removed, first_seen, last_seen, changed_at, approved_at, approved_by`

// PutToolRecords implements store.InventoryStore, in one transaction (one
// round trip: a batch).
func (s *Store) PutToolRecords(ctx context.Context, recs []*store.ToolRecord) error {
	if len(recs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	q := upsert("inventory_tools", toolRecordCols, 2)
	for _, r := range recs {
		b.Queue(q, r.Upstream, r.Name, r.Definition, r.Digest, r.ApprovedDefinition, r.ApprovedDigest, r.Changed, r.Removed,
			ts(r.FirstSeen), ts(r.LastSeen), ts(r.ChangedAt), ts(r.ApprovedAt), r.ApprovedBy)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		res := tx.SendBatch(ctx, b)
		for _, r := range recs {
			if _, err := res.Exec(); err != nil {
				res.Close()
				return fmt.Errorf("tool record %s/%s: %w", r.Upstream, r.Name, err)
			}
		}
		return res.Close()
	})
	return wrap("tool records", err)
}

func scanToolRecord(sc pgx.Row) (*store.ToolRecord, error) {
	var r store.ToolRecord
	var first, last, changed, approved int64
	if err := sc.Scan(&r.Upstream, &r.Name, &r.Definition, &r.Digest, &r.ApprovedDefinition, &r.ApprovedDigest, &r.Changed, &r.Removed,
		&first, &last, &changed, &approved, &r.ApprovedBy); err != nil {
		return nil, err
	}
	r.FirstSeen, r.LastSeen, r.ChangedAt, r.ApprovedAt = fromTS(first), fromTS(last), fromTS(changed), fromTS(approved)
	return &r, nil
}

// GetToolRecord implements store.InventoryStore.
func (s *Store) GetToolRecord(ctx context.Context, upstream, name string) (*store.ToolRecord, error) {
	r, err := scanToolRecord(s.pool.QueryRow(ctx, `SELECT `+toolRecordCols+` FROM inventory_tools WHERE upstream = $1 AND name = $2`, upstream, name))
	if err != nil {
		return nil, wrap(fmt.Sprintf("tool record %s/%s", upstream, name), err)
	}
	return r, nil
}

// ListToolRecords implements store.InventoryStore.
func (s *Store) ListToolRecords(ctx context.Context, upstream string) ([]*store.ToolRecord, error) {
	if upstream == "" {
		return queryAll(ctx, s.pool, "tool records", scanToolRecord, `SELECT `+toolRecordCols+` FROM inventory_tools ORDER BY upstream COLLATE "C", name COLLATE "C"`)
	}
	return queryAll(ctx, s.pool, "tool records", scanToolRecord, `SELECT `+toolRecordCols+` FROM inventory_tools WHERE upstream = $1 ORDER BY name COLLATE "C"`, upstream)
}

// PutUpstreamCredential implements store.InventoryStore.
func (s *Store) PutUpstreamCredential(ctx context.Context, c *store.UpstreamCredential) error {
	_, err := s.pool.Exec(ctx, upsert("inventory_upstream_credentials", `principal, upstream, kind, scope, created_at, expires_at, last_used, idp, grant_id`, 2),
		c.Principal, c.Upstream, c.Kind, c.Scope, ts(c.CreatedAt), ts(c.ExpiresAt), ts(c.LastUsed), c.IdP, c.GrantID)
	return wrap(fmt.Sprintf("upstream credential %s/%s", c.Upstream, c.Principal), err)
}

// ListUpstreamCredentials implements store.InventoryStore.
func (s *Store) ListUpstreamCredentials(ctx context.Context) ([]*store.UpstreamCredential, error) {
	return queryAll(ctx, s.pool, "upstream credentials", func(sc pgx.Row) (*store.UpstreamCredential, error) {
		var c store.UpstreamCredential
		var created, expires, used int64
		if err := sc.Scan(&c.Principal, &c.Upstream, &c.Kind, &c.Scope, &created, &expires, &used, &c.IdP, &c.GrantID); err != nil {
			return nil, err
		}
		c.CreatedAt, c.ExpiresAt, c.LastUsed = fromTS(created), fromTS(expires), fromTS(used)
		return &c, nil
	}, `SELECT principal, upstream, kind, scope, created_at, expires_at, last_used, idp, grant_id FROM inventory_upstream_credentials ORDER BY principal COLLATE "C", upstream COLLATE "C"`)
}

// DeleteUpstreamCredential implements store.InventoryStore.
func (s *Store) DeleteUpstreamCredential(ctx context.Context, principal, upstream string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM inventory_upstream_credentials WHERE principal = $1 AND upstream = $2`, principal, upstream)
	return mustAffect(tag, err, fmt.Sprintf("upstream credential %s/%s", upstream, principal))
}

// PutIdentityProvider implements store.InventoryStore.
func (s *Store) PutIdentityProvider(ctx context.Context, p *store.IdentityProvider) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO inventory_identity_providers AS p (issuer, name, kind, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (issuer) DO UPDATE SET name = excluded.name, kind = excluded.kind,
		created_at = CASE WHEN p.created_at = 0 THEN excluded.created_at ELSE p.created_at END`,
		p.Issuer, p.Name, p.Kind, ts(p.CreatedAt))
	return wrap(fmt.Sprintf("identity provider %q", p.Issuer), err)
}

// ListIdentityProviders implements store.InventoryStore.
func (s *Store) ListIdentityProviders(ctx context.Context) ([]*store.IdentityProvider, error) {
	return queryAll(ctx, s.pool, "identity providers", func(sc pgx.Row) (*store.IdentityProvider, error) {
		var p store.IdentityProvider
		var created int64
		if err := sc.Scan(&p.Issuer, &p.Name, &p.Kind, &created); err != nil {
			return nil, err
		}
		p.CreatedAt = fromTS(created)
		return &p, nil
	}, `SELECT issuer, name, kind, created_at FROM inventory_identity_providers ORDER BY issuer COLLATE "C"`)
}

// PutRevocation implements store.InventoryStore. The write is a single
// committed statement.
func (s *Store) PutRevocation(ctx context.Context, r *store.Revocation) error {
	_, err := s.pool.Exec(ctx, upsert("revocations", `kind, id, revoked_by, reason, at, applied_at, applied_note`, 2),
		r.Kind, r.ID, r.By, r.Reason, ts(r.At), ts(r.AppliedAt), r.AppliedNote)
	return wrap(fmt.Sprintf("revocation %s %q", r.Kind, r.ID), err)
}

// MarkRevocationApplied implements store.InventoryStore.
func (s *Store) MarkRevocationApplied(ctx context.Context, kind, id string, at time.Time, note string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE revocations SET applied_at = $1, applied_note = $2 WHERE kind = $3 AND id = $4`, ts(at), note, kind, id)
	return mustAffect(tag, err, fmt.Sprintf("revocation %s %q", kind, id))
}

// ListRevocations implements store.InventoryStore.
func (s *Store) ListRevocations(ctx context.Context) ([]*store.Revocation, error) {
	return queryAll(ctx, s.pool, "revocations", func(sc pgx.Row) (*store.Revocation, error) {
		var r store.Revocation
		var at, applied int64
		if err := sc.Scan(&r.Kind, &r.ID, &r.By, &r.Reason, &at, &applied, &r.AppliedNote); err != nil {
			return nil, err
		}
		r.At, r.AppliedAt = fromTS(at), fromTS(applied)
		return &r, nil
	}, `SELECT kind, id, revoked_by, reason, at, applied_at, applied_note FROM revocations ORDER BY kind COLLATE "C", id COLLATE "C"`)
}

// DeleteRevocation implements store.InventoryStore.
func (s *Store) DeleteRevocation(ctx context.Context, kind, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM revocations WHERE kind = $1 AND id = $2`, kind, id)
	return mustAffect(tag, err, fmt.Sprintf("revocation %s %q", kind, id))
}

// ListAccessTokens implements store.GrantLister.
func (s *Store) ListAccessTokens(ctx context.Context, now time.Time) ([]*store.AccessToken, error) {
	return queryAll(ctx, s.pool, "access tokens", scanAccess,
		`SELECT `+accessCols+` FROM access_tokens WHERE NOT revoked AND expires_at > $1 ORDER BY id COLLATE "C"`, now.UnixNano())
}

// ListRefreshTokens implements store.GrantLister.
func (s *Store) ListRefreshTokens(ctx context.Context, now time.Time) ([]*store.RefreshToken, error) {
	return queryAll(ctx, s.pool, "refresh tokens", func(sc pgx.Row) (*store.RefreshToken, error) {
		var t store.RefreshToken
		var exp, used int64
		if err := sc.Scan(&t.TokenHash, &t.FamilyID, &t.ClientID, &t.Subject, &t.Resource, &t.Scope, &exp, &used, &t.Revoked); err != nil {
			return nil, err
		}
		t.ExpiresAt, t.UsedAt = fromTS(exp), fromTS(used)
		return &t, nil
	}, `SELECT token_hash, family_id, client_id, subject, resource, scope, expires_at, used_at, revoked FROM refresh_tokens
		WHERE NOT revoked AND used_at = 0 AND expires_at > $1 ORDER BY family_id COLLATE "C", token_hash COLLATE "C"`, now.UnixNano())
}
