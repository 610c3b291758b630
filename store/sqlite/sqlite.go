// Package sqlite implements store.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go). The schema is created and upgraded by
// migrations embedded in the binary, applied in order at Open.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/mcpgate/mcpgate/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultFile is the database's file name in mcpgate's data directory,
// shared by the gateway and every command that works on its state.
const DefaultFile = "mcpgate.db"

// Store is a store.Store backed by SQLite.
type Store struct {
	db *sql.DB
	// audit is the audit writer's own connection (synchronous=NORMAL: a
	// commit is in the WAL, in the kernel's page cache, when it returns,
	// and SyncAudit fsyncs the WAL); nil for an in-memory database.
	audit *sql.DB
	// auditStmts are prepared on audit.
	auditStmts auditStmts
	// wal is the path of the database's write-ahead log ("" in memory).
	wal string
	// seg is the audit segment file (audit_segment.go); nil in memory.
	seg *segment
	revokeHooks
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and applies
// pending migrations. path ":memory:" gives a private in-memory database.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	if path != ":memory:" {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	q.Set("_txlock", "immediate")
	name := path
	if path != ":memory:" {
		name = (&url.URL{Path: path}).EscapedPath()
	}
	db, err := sql.Open("sqlite", "file:"+name+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if path == ":memory:" {
		// Every connection would get its own empty database.
		db.SetMaxOpenConns(1)
	}
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if path != ":memory:" {
		if err := s.openAudit(name); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		s.wal = path + "-wal"
		if err := s.openSegment(path); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
	}
	return s, nil
}

// openAudit opens the audit writer's connection to the database file
// (name escaped as in Open): one connection, WAL, synchronous=NORMAL, so
// that an audit commit costs no fsync and the audit log's sync policy
// decides when the WAL reaches the disk (SyncAudit). synchronous=NORMAL
// still syncs at every WAL checkpoint, so the database stays consistent
// after a power loss whatever the policy.
func (s *Store) openAudit(name string) error {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+name+"?"+q.Encode())
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return err
	}
	if err := s.auditStmts.prepare(db); err != nil {
		db.Close()
		return err
	}
	s.audit = db
	return nil
}

// CheckWritable reports whether the database accepts writes: it takes the
// write lock (BEGIN IMMEDIATE) and gives it back at once. Readiness
// probes use it.
func (s *Store) CheckWritable(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: the database does not accept writes: %w", err)
	}
	return tx.Rollback()
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, each in its own transaction.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: listing migrations: %w", err)
	}
	slices.Sort(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("sqlite: migration %s: name must start with a number and '_'", base)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", base, err)
		}
		if err := s.apply(ctx, version, base, string(body)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, version int, name, body string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, version, name, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", name, err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	return int(v.Int64), nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	var err error
	if s.seg != nil {
		err = s.seg.close()
	}
	if s.audit != nil {
		err = errors.Join(err, s.auditStmts.close(), s.audit.Close())
	}
	return errors.Join(err, s.db.Close())
}

func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func wrap(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	case isUnique(err):
		return fmt.Errorf("%s: %w", what, store.ErrExists)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return wrap(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

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
	_, err = s.db.ExecContext(ctx, `INSERT INTO users (username, password_hash, groups_json, roles_json, email, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		u.Username, u.PasswordHash, groups, roles, u.Email, ts(u.CreatedAt))
	return wrap(fmt.Sprintf("user %q", u.Username), err)
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, username string) (*store.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`, username))
	if err != nil {
		return nil, wrap(fmt.Sprintf("user %q", username), err)
	}
	return u, nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY username`)
	if err != nil {
		return nil, wrap("users", err)
	}
	defer rows.Close()
	var out []*store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap("users", err)
		}
		out = append(out, u)
	}
	return out, wrap("users", rows.Err())
}

const userCols = `username, password_hash, groups_json, roles_json, email, created_at`

func scanUser(r interface{ Scan(...any) error }) (*store.User, error) {
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

// DeleteUser implements store.Store.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE username = ?`, username)
	return mustAffect(res, err, fmt.Sprintf("user %q", username))
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

type scanner interface{ Scan(...any) error }

func scanClient(r scanner) (*store.Client, error) {
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
	_, err = s.db.ExecContext(ctx, `INSERT INTO clients (`+clientCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, args...)
	return wrap(fmt.Sprintf("client %q", c.ID), err)
}

// PutClient implements store.Store.
func (s *Store) PutClient(ctx context.Context, c *store.Client) error {
	args, err := clientArgs(c)
	if err != nil {
		return err
	}
	set := make([]string, len(clientRegistrationCols))
	for i, col := range clientRegistrationCols {
		set[i] = col + " = excluded." + col
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO clients (`+clientCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET `+strings.Join(set, ", "), args...)
	return wrap(fmt.Sprintf("client %q", c.ID), err)
}

// SetClientStatus implements store.Store.
func (s *Store) SetClientStatus(ctx context.Context, id, status, by string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE clients SET status = ?, status_by = ?, status_at = ? WHERE id = ?`, status, by, ts(at), id)
	return mustAffect(res, err, fmt.Sprintf("client %q", id))
}

// MarkClientUsed implements store.Store.
func (s *Store) MarkClientUsed(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE clients SET first_used_at = CASE WHEN first_used_at = 0 THEN ? ELSE first_used_at END WHERE id = ?`, ts(at), id)
	return mustAffect(res, err, fmt.Sprintf("client %q", id))
}

// CountClients implements store.Store.
func (s *Store) CountClients(ctx context.Context, kind string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM clients WHERE kind = ?`, kind).Scan(&n)
	return n, wrap("clients", err)
}

// DeleteUnusedClients implements store.Store.
func (s *Store) DeleteUnusedClients(ctx context.Context, kind string, createdBefore time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM clients WHERE kind = ? AND first_used_at = 0 AND status <> ? AND created_at < ?`,
		kind, store.ClientApproved, ts(createdBefore))
	if err != nil {
		return 0, wrap("clients", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("clients", err)
}

// GetClient implements store.Store.
func (s *Store) GetClient(ctx context.Context, id string) (*store.Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientCols+` FROM clients WHERE id = ?`, id))
	if err != nil {
		return nil, wrap(fmt.Sprintf("client %q", id), err)
	}
	return c, nil
}

// ListClients implements store.Store.
func (s *Store) ListClients(ctx context.Context) ([]*store.Client, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+clientCols+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, wrap("clients", err)
	}
	defer rows.Close()
	var out []*store.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrap("clients", err)
		}
		out = append(out, c)
	}
	return out, wrap("clients", rows.Err())
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
	return mustAffect(res, err, fmt.Sprintf("client %q", id))
}

// CreateAuthCode implements store.Store.
func (s *Store) CreateAuthCode(ctx context.Context, c *store.AuthCode) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_codes (code_hash, client_id, subject, redirect_uri, code_challenge, resource, scope, family_id, claims, expires_at, used_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		c.CodeHash, c.ClientID, c.Subject, c.RedirectURI, c.CodeChallenge, c.Resource, c.Scope, c.FamilyID, c.Claims, ts(c.ExpiresAt), ts(c.UsedAt))
	return wrap("authorization code", err)
}

func (s *Store) getAuthCode(ctx context.Context, codeHash string) (*store.AuthCode, error) {
	var c store.AuthCode
	var exp, used int64
	err := s.db.QueryRowContext(ctx, `SELECT code_hash, client_id, subject, redirect_uri, code_challenge, resource, scope, family_id, claims, expires_at, used_at FROM auth_codes WHERE code_hash = ?`, codeHash).
		Scan(&c.CodeHash, &c.ClientID, &c.Subject, &c.RedirectURI, &c.CodeChallenge, &c.Resource, &c.Scope, &c.FamilyID, &c.Claims, &exp, &used)
	if err != nil {
		return nil, wrap("authorization code", err)
	}
	c.ExpiresAt, c.UsedAt = fromTS(exp), fromTS(used)
	return &c, nil
}

// ConsumeAuthCode implements store.Store. The conditional UPDATE makes the
// first redemption win even across processes.
func (s *Store) ConsumeAuthCode(ctx context.Context, codeHash string, now time.Time) (*store.AuthCode, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE auth_codes SET used_at = ? WHERE code_hash = ? AND used_at = 0`, ts(now), codeHash)
	if err != nil {
		return nil, wrap("authorization code", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, wrap("authorization code", err)
	}
	c, err := s.getAuthCode(ctx, codeHash)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return c, fmt.Errorf("authorization code: %w", store.ErrConsumed)
	}
	return c, nil
}

const refreshCols = `token_hash, family_id, client_id, subject, resource, scope, claims, expires_at, used_at, revoked`

func insertRefresh(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, t *store.RefreshToken) error {
	_, err := ex.ExecContext(ctx, `INSERT INTO refresh_tokens (`+refreshCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		t.TokenHash, t.FamilyID, t.ClientID, t.Subject, t.Resource, t.Scope, t.Claims, ts(t.ExpiresAt), ts(t.UsedAt), t.Revoked)
	return wrap("refresh token", err)
}

// CreateRefreshToken implements store.Store.
func (s *Store) CreateRefreshToken(ctx context.Context, t *store.RefreshToken) error {
	return insertRefresh(ctx, s.db, t)
}

func getRefresh(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, hash string) (*store.RefreshToken, error) {
	var t store.RefreshToken
	var exp, used int64
	err := q.QueryRowContext(ctx, `SELECT `+refreshCols+` FROM refresh_tokens WHERE token_hash = ?`, hash).
		Scan(&t.TokenHash, &t.FamilyID, &t.ClientID, &t.Subject, &t.Resource, &t.Scope, &t.Claims, &exp, &used, &t.Revoked)
	if err != nil {
		return nil, wrap("refresh token", err)
	}
	t.ExpiresAt, t.UsedAt = fromTS(exp), fromTS(used)
	return &t, nil
}

// RotateRefreshToken implements store.Store.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next *store.RefreshToken, now time.Time) (*store.RefreshToken, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap("refresh token", err)
	}
	defer tx.Rollback()
	// Not revoked and not used, checked in the same transaction as the
	// rotation: a concurrent RevokeFamily comes before (and this fails)
	// or after (and revokes next too).
	res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at = 0 AND revoked = 0`, ts(now), oldHash)
	if err != nil {
		return nil, wrap("refresh token", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, wrap("refresh token", err)
	}
	old, err := getRefresh(ctx, tx, oldHash)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		if old.Revoked {
			return old, fmt.Errorf("refresh token: %w", store.ErrRevoked)
		}
		return old, fmt.Errorf("refresh token: %w", store.ErrConsumed)
	}
	if err := insertRefresh(ctx, tx, next); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap("refresh token", err)
	}
	return old, nil
}

// GetRefreshToken implements store.Store.
func (s *Store) GetRefreshToken(ctx context.Context, tokenHash string) (*store.RefreshToken, error) {
	return getRefresh(ctx, s.db, tokenHash)
}

// RevokeRefreshToken implements store.Store.
func (s *Store) RevokeRefreshToken(ctx context.Context, tokenHash string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE refresh_tokens SET revoked = 1 WHERE token_hash = ?`, tokenHash)
	return mustAffect(res, err, "refresh token")
}

// RecordAccessToken implements store.Store.
func (s *Store) RecordAccessToken(ctx context.Context, t *store.AccessToken) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO access_tokens (id, family_id, client_id, subject, resource, scope, issued_at, expires_at, revoked) VALUES (?,?,?,?,?,?,?,?,?)`,
		t.ID, t.FamilyID, t.ClientID, t.Subject, t.Resource, t.Scope, ts(t.IssuedAt), ts(t.ExpiresAt), t.Revoked)
	return wrap(fmt.Sprintf("access token %q", t.ID), err)
}

// GetAccessToken implements store.Store.
func (s *Store) GetAccessToken(ctx context.Context, id string) (*store.AccessToken, error) {
	var t store.AccessToken
	var iat, exp int64
	err := s.db.QueryRowContext(ctx, `SELECT id, family_id, client_id, subject, resource, scope, issued_at, expires_at, revoked FROM access_tokens WHERE id = ?`, id).
		Scan(&t.ID, &t.FamilyID, &t.ClientID, &t.Subject, &t.Resource, &t.Scope, &iat, &exp, &t.Revoked)
	if err != nil {
		return nil, wrap("access token", err)
	}
	t.IssuedAt, t.ExpiresAt = fromTS(iat), fromTS(exp)
	return &t, nil
}

// RevokeAccessToken implements store.Store.
func (s *Store) RevokeAccessToken(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE access_tokens SET revoked = 1 WHERE id = ?`, id)
	if err := mustAffect(res, err, "access token"); err != nil {
		return err
	}
	s.tokensRevoked()
	return nil
}

// IsAccessTokenRevoked implements store.Store.
func (s *Store) IsAccessTokenRevoked(ctx context.Context, id string) (bool, error) {
	var revoked bool
	err := s.db.QueryRowContext(ctx, `SELECT revoked FROM access_tokens WHERE id = ?`, id).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("access token", err)
	}
	return revoked, nil
}

// RevokeFamily implements store.Store.
func (s *Store) RevokeFamily(ctx context.Context, familyID string) (int, error) {
	if familyID == "" {
		return 0, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, wrap("token family", err)
	}
	defer tx.Rollback()
	total := int64(0)
	for _, q := range []string{
		`UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ? AND revoked = 0`,
		`UPDATE access_tokens SET revoked = 1 WHERE family_id = ? AND revoked = 0`,
	} {
		res, err := tx.ExecContext(ctx, q, familyID)
		if err != nil {
			return 0, wrap("token family", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	if err := tx.Commit(); err != nil {
		return 0, wrap("token family", err)
	}
	if total > 0 {
		s.tokensRevoked()
	}
	return int(total), nil
}

// UseOnce implements store.Store.
func (s *Store) UseOnce(ctx context.Context, namespace, id string, expiresAt, now time.Time) error {
	// Replace an expired record; refuse a live one.
	res, err := s.db.ExecContext(ctx, `INSERT INTO used_once (namespace, id, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (namespace, id) DO UPDATE SET expires_at = excluded.expires_at WHERE used_once.expires_at <= ?`,
		namespace, id, ts(expiresAt), ts(now))
	if err != nil {
		return wrap("one-time id", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap("one-time id", err)
	}
	if n == 0 {
		return fmt.Errorf("%s %q: %w", namespace, id, store.ErrReplay)
	}
	return nil
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, se *store.Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id_hash, kind, subject, data, expires_at) VALUES (?,?,?,?,?)`, se.IDHash, se.Kind, se.Subject, se.Data, ts(se.ExpiresAt))
	return wrap("session", err)
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, idHash string, now time.Time) (*store.Session, error) {
	var se store.Session
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT id_hash, kind, subject, data, expires_at FROM sessions WHERE id_hash = ? AND expires_at > ?`, idHash, ts(now)).
		Scan(&se.IDHash, &se.Kind, &se.Subject, &se.Data, &exp)
	if err != nil {
		return nil, wrap("session", err)
	}
	se.ExpiresAt = fromTS(exp)
	return &se, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	return wrap("session", err)
}

// AddSigningKey implements store.Store.
func (s *Store) AddSigningKey(ctx context.Context, k *store.SigningKey) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, private_jwk, created_at, retired_at) VALUES (?,?,?,?,?)`, k.ID, k.Algorithm, k.PrivateJWK, ts(k.CreatedAt), ts(k.RetiredAt))
	return wrap(fmt.Sprintf("signing key %q", k.ID), err)
}

// ListSigningKeys implements store.Store.
func (s *Store) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, algorithm, private_jwk, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, wrap("signing keys", err)
	}
	defer rows.Close()
	var out []*store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var c, r int64
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PrivateJWK, &c, &r); err != nil {
			return nil, wrap("signing keys", err)
		}
		k.CreatedAt, k.RetiredAt = fromTS(c), fromTS(r)
		out = append(out, &k)
	}
	return out, wrap("signing keys", rows.Err())
}

// RetireSigningKey implements store.Store.
func (s *Store) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE id = ?`, ts(at), id)
	return mustAffect(res, err, fmt.Sprintf("signing key %q", id))
}

// DeleteSigningKey implements store.Store.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM signing_keys WHERE id = ?`, id)
	return mustAffect(res, err, fmt.Sprintf("signing key %q", id))
}

// PutMetadataDocument implements store.Store.
func (s *Store) PutMetadataDocument(ctx context.Context, d *store.MetadataDocument) (*store.MetadataDocument, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap("metadata document", err)
	}
	defer tx.Rollback()
	n := *d
	var oldDigest, oldPrev string
	var oldChanged int64
	err = tx.QueryRowContext(ctx, `SELECT digest, previous_digest, changed_at FROM metadata_documents WHERE url = ?`, d.URL).Scan(&oldDigest, &oldPrev, &oldChanged)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		n.PreviousDigest, n.ChangedAt = "", time.Time{}
	case err != nil:
		return nil, wrap("metadata document", err)
	case oldDigest != d.Digest:
		n.PreviousDigest, n.ChangedAt = oldDigest, d.FetchedAt
	default:
		n.PreviousDigest, n.ChangedAt = oldPrev, fromTS(oldChanged)
	}
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO metadata_documents (url, body, digest, previous_digest, fetched_at, changed_at, expires_at) VALUES (?,?,?,?,?,?,?)`,
		n.URL, n.Body, n.Digest, n.PreviousDigest, ts(n.FetchedAt), ts(n.ChangedAt), ts(n.ExpiresAt))
	if err != nil {
		return nil, wrap("metadata document", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap("metadata document", err)
	}
	return &n, nil
}

// GetMetadataDocument implements store.Store.
func (s *Store) GetMetadataDocument(ctx context.Context, u string) (*store.MetadataDocument, error) {
	var d store.MetadataDocument
	var f, c, e int64
	err := s.db.QueryRowContext(ctx, `SELECT url, body, digest, previous_digest, fetched_at, changed_at, expires_at FROM metadata_documents WHERE url = ?`, u).
		Scan(&d.URL, &d.Body, &d.Digest, &d.PreviousDigest, &f, &c, &e)
	if err != nil {
		return nil, wrap("metadata document", err)
	}
	d.FetchedAt, d.ChangedAt, d.ExpiresAt = fromTS(f), fromTS(c), fromTS(e)
	return &d, nil
}

// DeleteExpired implements store.Store.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	total := int64(0)
	for _, q := range []string{
		`DELETE FROM auth_codes WHERE expires_at <= ?`,
		`DELETE FROM refresh_tokens WHERE expires_at <= ?`,
		`DELETE FROM access_tokens WHERE expires_at <= ?`,
		`DELETE FROM used_once WHERE expires_at <= ?`,
		`DELETE FROM sessions WHERE expires_at <= ?`,
	} {
		res, err := s.db.ExecContext(ctx, q, ts(now))
		if err != nil {
			return 0, wrap("expiry", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return int(total), nil
}
