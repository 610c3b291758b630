package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

func jsonList(what string, v []string) (string, error) {
	if v == nil {
		return "[]", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return string(b), nil
}

func parseList(what, s string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("%s: stored list: %w", what, err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

const userCols = `username, password_hash, groups_json, roles_json, email, created_at`

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	groups, err := jsonList("groups", u.Groups)
	if err != nil {
		return err
	}
	roles, err := jsonList("roles", u.Roles)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO users (`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.Username, u.PasswordHash, groups, roles, u.Email, ts(u.CreatedAt))
	return wrap(fmt.Sprintf("user %q", u.Username), err)
}

func scanUser(r pgx.Row) (*store.User, error) {
	var u store.User
	var groups, roles string
	var created int64
	if err := r.Scan(&u.Username, &u.PasswordHash, &groups, &roles, &u.Email, &created); err != nil {
		return nil, err
	}
	var err error
	if u.Groups, err = parseList("groups", groups); err != nil {
		return nil, err
	}
	if u.Roles, err = parseList("roles", roles); err != nil {
		return nil, err
	}
	u.CreatedAt = fromTS(created)
	return &u, nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, username string) (*store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE username = $1`, username))
	if err != nil {
		return nil, wrap(fmt.Sprintf("user %q", username), err)
	}
	return u, nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	return queryAll(ctx, s.pool, "users", scanUser, `SELECT `+userCols+` FROM users ORDER BY username COLLATE "C"`)
}

// DeleteUser implements store.Store.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE username = $1`, username)
	return mustAffect(tag, err, fmt.Sprintf("user %q", username))
}

const clientCols = `id, kind, name, secret_hash, redirect_uris, grant_types, auth_method, scope, jwks, jwks_uri, metadata, created_at, status, status_by, status_at, first_used_at`

// clientRegistrationCols are the columns PutClient replaces on an
// existing client (not its admission status or first use).
var clientRegistrationCols = []string{"kind", "name", "secret_hash", "redirect_uris", "grant_types", "auth_method", "scope", "jwks", "jwks_uri", "metadata", "created_at"}

func clientArgs(c *store.Client) ([]any, error) {
	ru, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return nil, fmt.Errorf("client %q: redirect_uris: %w", c.ID, err)
	}
	gt, err := json.Marshal(c.GrantTypes)
	if err != nil {
		return nil, fmt.Errorf("client %q: grant_types: %w", c.ID, err)
	}
	return []any{c.ID, c.Kind, c.Name, c.SecretHash, string(ru), string(gt), c.TokenEndpointAuthMethod, c.Scope, c.JWKS, c.JWKSURI, c.Metadata, ts(c.CreatedAt),
		c.Status, c.StatusBy, ts(c.StatusAt), ts(c.FirstUsedAt)}, nil
}

func scanClient(r pgx.Row) (*store.Client, error) {
	var c store.Client
	var ru, gt string
	var created, statusAt, firstUsed int64
	if err := r.Scan(&c.ID, &c.Kind, &c.Name, &c.SecretHash, &ru, &gt, &c.TokenEndpointAuthMethod, &c.Scope, &c.JWKS, &c.JWKSURI, &c.Metadata, &created,
		&c.Status, &c.StatusBy, &statusAt, &firstUsed); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(ru), &c.RedirectURIs); err != nil {
		return nil, fmt.Errorf("client %q: stored redirect_uris: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(gt), &c.GrantTypes); err != nil {
		return nil, fmt.Errorf("client %q: stored grant_types: %w", c.ID, err)
	}
	c.CreatedAt, c.StatusAt, c.FirstUsedAt = fromTS(created), fromTS(statusAt), fromTS(firstUsed)
	return &c, nil
}

// CreateClient implements store.Store.
func (s *Store) CreateClient(ctx context.Context, c *store.Client) error {
	args, err := clientArgs(c)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO clients (`+clientCols+`) VALUES (`+params(1, 16)+`)`, args...)
	return wrap(fmt.Sprintf("client %q", c.ID), err)
}

// PutClient implements store.Store.
func (s *Store) PutClient(ctx context.Context, c *store.Client) error {
	args, err := clientArgs(c)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO clients (`+clientCols+`) VALUES (`+params(1, 16)+`)
		ON CONFLICT (id) DO UPDATE SET `+upsertSet(clientRegistrationCols), args...)
	return wrap(fmt.Sprintf("client %q", c.ID), err)
}

// SetClientStatus implements store.Store.
func (s *Store) SetClientStatus(ctx context.Context, id, status, by string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE clients SET status = $1, status_by = $2, status_at = $3 WHERE id = $4`, status, by, ts(at), id)
	return mustAffect(tag, err, fmt.Sprintf("client %q", id))
}

// MarkClientUsed implements store.Store.
func (s *Store) MarkClientUsed(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE clients SET first_used_at = CASE WHEN first_used_at = 0 THEN $1 ELSE first_used_at END WHERE id = $2`, ts(at), id)
	return mustAffect(tag, err, fmt.Sprintf("client %q", id))
}

// CountClients implements store.Store.
func (s *Store) CountClients(ctx context.Context, kind string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM clients WHERE kind = $1`, kind).Scan(&n)
	return n, wrap("clients", err)
}

// DeleteUnusedClients implements store.Store.
func (s *Store) DeleteUnusedClients(ctx context.Context, kind string, createdBefore time.Time) (int, error) {
	n, err := count(s.pool.Exec(ctx, `DELETE FROM clients WHERE kind = $1 AND first_used_at = 0 AND status <> $2 AND created_at < $3`,
		kind, store.ClientApproved, ts(createdBefore)))
	return n, wrap("clients", err)
}

// GetClient implements store.Store.
func (s *Store) GetClient(ctx context.Context, id string) (*store.Client, error) {
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientCols+` FROM clients WHERE id = $1`, id))
	if err != nil {
		return nil, wrap(fmt.Sprintf("client %q", id), err)
	}
	return c, nil
}

// ListClients implements store.Store.
func (s *Store) ListClients(ctx context.Context) ([]*store.Client, error) {
	return queryAll(ctx, s.pool, "clients", scanClient, `SELECT `+clientCols+` FROM clients ORDER BY id COLLATE "C"`)
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
	return mustAffect(tag, err, fmt.Sprintf("client %q", id))
}

const authCodeCols = `code_hash, client_id, subject, redirect_uri, code_challenge, resource, scope, family_id, claims, expires_at, used_at`

// CreateAuthCode implements store.Store.
func (s *Store) CreateAuthCode(ctx context.Context, c *store.AuthCode) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_codes (`+authCodeCols+`) VALUES (`+params(1, 11)+`)`,
		c.CodeHash, c.ClientID, c.Subject, c.RedirectURI, c.CodeChallenge, c.Resource, c.Scope, c.FamilyID, c.Claims, ts(c.ExpiresAt), ts(c.UsedAt))
	return wrap("authorization code", err)
}

func scanAuthCode(r pgx.Row) (*store.AuthCode, error) {
	var c store.AuthCode
	var exp, used int64
	if err := r.Scan(&c.CodeHash, &c.ClientID, &c.Subject, &c.RedirectURI, &c.CodeChallenge, &c.Resource, &c.Scope, &c.FamilyID, &c.Claims, &exp, &used); err != nil {
		return nil, err
	}
	c.ExpiresAt, c.UsedAt = fromTS(exp), fromTS(used)
	return &c, nil
}

// ConsumeAuthCode implements store.Store. The conditional UPDATE makes the
// first redemption win even across processes: a concurrent one waits for
// its row lock, then finds used_at set.
func (s *Store) ConsumeAuthCode(ctx context.Context, codeHash string, now time.Time) (*store.AuthCode, error) {
	c, err := scanAuthCode(s.pool.QueryRow(ctx, `UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at = 0 RETURNING `+authCodeCols, ts(now), codeHash))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, wrap("authorization code", err)
	}
	c, err = scanAuthCode(s.pool.QueryRow(ctx, `SELECT `+authCodeCols+` FROM auth_codes WHERE code_hash = $1`, codeHash))
	if err != nil {
		return nil, wrap("authorization code", err)
	}
	return c, fmt.Errorf("authorization code: %w", store.ErrConsumed)
}

const refreshCols = `token_hash, family_id, client_id, subject, resource, scope, claims, expires_at, used_at, revoked`

func insertRefresh(ctx context.Context, q querier, t *store.RefreshToken) error {
	_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (`+refreshCols+`) VALUES (`+params(1, 10)+`)`,
		t.TokenHash, t.FamilyID, t.ClientID, t.Subject, t.Resource, t.Scope, t.Claims, ts(t.ExpiresAt), ts(t.UsedAt), t.Revoked)
	return wrap("refresh token", err)
}

func scanRefresh(r pgx.Row) (*store.RefreshToken, error) {
	var t store.RefreshToken
	var exp, used int64
	if err := r.Scan(&t.TokenHash, &t.FamilyID, &t.ClientID, &t.Subject, &t.Resource, &t.Scope, &t.Claims, &exp, &used, &t.Revoked); err != nil {
		return nil, err
	}
	t.ExpiresAt, t.UsedAt = fromTS(exp), fromTS(used)
	return &t, nil
}

func getRefresh(ctx context.Context, q querier, hash string) (*store.RefreshToken, error) {
	t, err := scanRefresh(q.QueryRow(ctx, `SELECT `+refreshCols+` FROM refresh_tokens WHERE token_hash = $1`, hash))
	if err != nil {
		return nil, wrap("refresh token", err)
	}
	return t, nil
}

// CreateRefreshToken implements store.Store.
func (s *Store) CreateRefreshToken(ctx context.Context, t *store.RefreshToken) error {
	return insertRefresh(ctx, s.pool, t)
}

// familyLock names the advisory lock that serialises the rotations and
// the revocation of one grant family.
func familyLock(id string) string { return "mcpgate:family:" + id }

// lockFamilies takes the family locks of ids, in order (no deadlock
// between two transactions locking the same families).
func lockFamilies(ctx context.Context, tx pgx.Tx, ids ...string) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if err := lockXact(ctx, tx, familyLock(id)); err != nil {
			return err
		}
	}
	return nil
}

// RotateRefreshToken implements store.Store. The rotation holds the
// advisory lock of the token's family, as RevokeFamily does: a revocation
// either comes first (the rotation then finds the token revoked) or after
// the rotation's commit (and then revokes next too).
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next *store.RefreshToken, now time.Time) (*store.RefreshToken, error) {
	var old *store.RefreshToken
	var result error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := getRefresh(ctx, tx, oldHash)
		if err != nil {
			return err
		}
		if err := lockFamilies(ctx, tx, cur.FamilyID, next.FamilyID); err != nil {
			return wrap("refresh token", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at = 0 AND NOT revoked`, ts(now), oldHash)
		if err != nil {
			return wrap("refresh token", err)
		}
		if old, err = getRefresh(ctx, tx, oldHash); err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			if old.Revoked {
				result = fmt.Errorf("refresh token: %w", store.ErrRevoked)
			} else {
				result = fmt.Errorf("refresh token: %w", store.ErrConsumed)
			}
			return errRollback
		}
		return insertRefresh(ctx, tx, next)
	})
	switch {
	case errors.Is(err, errRollback):
		return old, result
	case err != nil:
		return nil, err
	}
	return old, nil
}

// GetRefreshToken implements store.Store.
func (s *Store) GetRefreshToken(ctx context.Context, tokenHash string) (*store.RefreshToken, error) {
	return getRefresh(ctx, s.pool, tokenHash)
}

// RevokeRefreshToken implements store.Store.
func (s *Store) RevokeRefreshToken(ctx context.Context, tokenHash string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE refresh_tokens SET revoked = true WHERE token_hash = $1`, tokenHash)
	return mustAffect(tag, err, "refresh token")
}

const accessCols = `id, family_id, client_id, subject, resource, scope, issued_at, expires_at, revoked`

func scanAccess(r pgx.Row) (*store.AccessToken, error) {
	var t store.AccessToken
	var iat, exp int64
	if err := r.Scan(&t.ID, &t.FamilyID, &t.ClientID, &t.Subject, &t.Resource, &t.Scope, &iat, &exp, &t.Revoked); err != nil {
		return nil, err
	}
	t.IssuedAt, t.ExpiresAt = fromTS(iat), fromTS(exp)
	return &t, nil
}

// RecordAccessToken implements store.Store.
func (s *Store) RecordAccessToken(ctx context.Context, t *store.AccessToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO access_tokens (`+accessCols+`) VALUES (`+params(1, 9)+`)`,
		t.ID, t.FamilyID, t.ClientID, t.Subject, t.Resource, t.Scope, ts(t.IssuedAt), ts(t.ExpiresAt), t.Revoked)
	return wrap(fmt.Sprintf("access token %q", t.ID), err)
}

// GetAccessToken implements store.Store.
func (s *Store) GetAccessToken(ctx context.Context, id string) (*store.AccessToken, error) {
	t, err := scanAccess(s.pool.QueryRow(ctx, `SELECT `+accessCols+` FROM access_tokens WHERE id = $1`, id))
	if err != nil {
		return nil, wrap("access token", err)
	}
	return t, nil
}

// RevokeAccessToken implements store.Store.
func (s *Store) RevokeAccessToken(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE id = $1`, id)
	if err := mustAffect(tag, err, "access token"); err != nil {
		return err
	}
	s.tokensRevoked()
	return nil
}

// IsAccessTokenRevoked implements store.Store.
func (s *Store) IsAccessTokenRevoked(ctx context.Context, id string) (bool, error) {
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT revoked FROM access_tokens WHERE id = $1`, id).Scan(&revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("access token", err)
	}
	return revoked, nil
}

// RevokeFamily implements store.Store, holding the family's advisory lock
// (see RotateRefreshToken).
func (s *Store) RevokeFamily(ctx context.Context, familyID string) (int, error) {
	if familyID == "" {
		return 0, nil
	}
	total := int64(0)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockFamilies(ctx, tx, familyID); err != nil {
			return err
		}
		for _, q := range []string{
			`UPDATE refresh_tokens SET revoked = true WHERE family_id = $1 AND NOT revoked`,
			`UPDATE access_tokens SET revoked = true WHERE family_id = $1 AND NOT revoked`,
		} {
			tag, err := tx.Exec(ctx, q, familyID)
			if err != nil {
				return err
			}
			total += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, wrap("token family", err)
	}
	if total > 0 {
		s.tokensRevoked()
	}
	return int(total), nil
}

// UseOnce implements store.Store: one INSERT ... ON CONFLICT, which
// replaces an expired record and refuses a live one atomically.
func (s *Store) UseOnce(ctx context.Context, namespace, id string, expiresAt, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO used_once (namespace, id, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (namespace, id) DO UPDATE SET expires_at = excluded.expires_at WHERE used_once.expires_at <= $4`,
		namespace, id, ts(expiresAt), ts(now))
	if err != nil {
		return wrap("one-time id", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %q: %w", namespace, id, store.ErrReplay)
	}
	return nil
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, se *store.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (id_hash, kind, subject, data, expires_at) VALUES ($1, $2, $3, $4, $5)`, se.IDHash, se.Kind, se.Subject, se.Data, ts(se.ExpiresAt))
	return wrap("session", err)
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, idHash string, now time.Time) (*store.Session, error) {
	var se store.Session
	var exp int64
	err := s.pool.QueryRow(ctx, `SELECT id_hash, kind, subject, data, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2`, idHash, ts(now)).
		Scan(&se.IDHash, &se.Kind, &se.Subject, &se.Data, &exp)
	if err != nil {
		return nil, wrap("session", err)
	}
	se.ExpiresAt = fromTS(exp)
	return &se, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash)
	return wrap("session", err)
}

// AddSigningKey implements store.Store.
func (s *Store) AddSigningKey(ctx context.Context, k *store.SigningKey) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signing_keys (id, algorithm, private_jwk, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)`, k.ID, k.Algorithm, k.PrivateJWK, ts(k.CreatedAt), ts(k.RetiredAt))
	return wrap(fmt.Sprintf("signing key %q", k.ID), err)
}

// ListSigningKeys implements store.Store.
func (s *Store) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	return queryAll(ctx, s.pool, "signing keys", func(r pgx.Row) (*store.SigningKey, error) {
		var k store.SigningKey
		var c, rt int64
		if err := r.Scan(&k.ID, &k.Algorithm, &k.PrivateJWK, &c, &rt); err != nil {
			return nil, err
		}
		k.CreatedAt, k.RetiredAt = fromTS(c), fromTS(rt)
		return &k, nil
	}, `SELECT id, algorithm, private_jwk, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, id COLLATE "C"`)
}

// RetireSigningKey implements store.Store.
func (s *Store) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE signing_keys SET retired_at = $1 WHERE id = $2`, ts(at), id)
	return mustAffect(tag, err, fmt.Sprintf("signing key %q", id))
}

// DeleteSigningKey implements store.Store.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM signing_keys WHERE id = $1`, id)
	return mustAffect(tag, err, fmt.Sprintf("signing key %q", id))
}

// PutMetadataDocument implements store.Store in one INSERT ... ON
// CONFLICT: the previous digest and the change time are computed from
// the stored row under its lock.
func (s *Store) PutMetadataDocument(ctx context.Context, d *store.MetadataDocument) (*store.MetadataDocument, error) {
	n := *d
	var changed int64
	err := s.pool.QueryRow(ctx, `INSERT INTO metadata_documents AS m (url, body, digest, previous_digest, fetched_at, changed_at, expires_at)
		VALUES ($1, $2, $3, '', $4, 0, $5)
		ON CONFLICT (url) DO UPDATE SET body = excluded.body, digest = excluded.digest,
			previous_digest = CASE WHEN m.digest <> excluded.digest THEN m.digest ELSE m.previous_digest END,
			changed_at = CASE WHEN m.digest <> excluded.digest THEN excluded.fetched_at ELSE m.changed_at END,
			fetched_at = excluded.fetched_at, expires_at = excluded.expires_at
		RETURNING previous_digest, changed_at`,
		d.URL, d.Body, d.Digest, ts(d.FetchedAt), ts(d.ExpiresAt)).Scan(&n.PreviousDigest, &changed)
	if err != nil {
		return nil, wrap("metadata document", err)
	}
	n.ChangedAt = fromTS(changed)
	return &n, nil
}

// GetMetadataDocument implements store.Store.
func (s *Store) GetMetadataDocument(ctx context.Context, u string) (*store.MetadataDocument, error) {
	var d store.MetadataDocument
	var f, c, e int64
	err := s.pool.QueryRow(ctx, `SELECT url, body, digest, previous_digest, fetched_at, changed_at, expires_at FROM metadata_documents WHERE url = $1`, u).
		Scan(&d.URL, &d.Body, &d.Digest, &d.PreviousDigest, &f, &c, &e)
	if err != nil {
		return nil, wrap("metadata document", err)
	}
	d.FetchedAt, d.ChangedAt, d.ExpiresAt = fromTS(f), fromTS(c), fromTS(e)
	return &d, nil
}

// DeleteExpired implements store.Store.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, q := range []string{
		`DELETE FROM auth_codes WHERE expires_at <= $1`,
		`DELETE FROM refresh_tokens WHERE expires_at <= $1`,
		`DELETE FROM access_tokens WHERE expires_at <= $1`,
		`DELETE FROM used_once WHERE expires_at <= $1`,
		`DELETE FROM sessions WHERE expires_at <= $1`,
	} {
		n, err := count(s.pool.Exec(ctx, q, ts(now)))
		if err != nil {
			return 0, wrap("expiry", err)
		}
		total += n
	}
	return total, nil
}
