// Package postgres implements mcpgate's stores (store.Store and every
// other interface store/sqlite implements) on PostgreSQL, through
// github.com/jackc/pgx/v5 and its connection pool, so that several
// gateway replicas and the command line can share one database.
//
// The schema is created and upgraded by migrations embedded in the
// binary, applied in order at Open while holding a session-level advisory
// lock: replicas starting at the same time apply each migration once, the
// others wait and then find it applied. The migrations mirror those of
// store/sqlite (same numbers, same tables and columns; times are Unix
// nanoseconds in BIGINT columns, flags BOOLEAN, payloads BYTEA).
//
// Operations that must be atomic across processes are single conditional
// statements (UPDATE ... WHERE ... RETURNING, INSERT ... ON CONFLICT) or
// transactions that serialise on a transaction-scoped advisory lock: the
// audit chain's head, the rotations and revocations of one grant family,
// the creation of approvals with one binding.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcpgate/mcpgate/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store (and the other store interfaces) backed by
// PostgreSQL. It is safe for concurrent use, and several Stores, in one
// process or many, may share one database.
type Store struct {
	pool *pgxpool.Pool
	revokeHooks
}

var _ store.Store = (*Store)(nil)

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// IsURL reports whether s names a PostgreSQL database (a postgres:// or
// postgresql:// URL).
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// DefaultConnectTimeout bounds each attempt to connect to the server when
// the URL sets no connect_timeout.
const DefaultConnectTimeout = 10 * time.Second

// Open connects to the database at url (postgres://user:password@host/db,
// with any of the parameters pgx accepts, e.g. sslmode, connect_timeout
// and the pool's pool_max_conns) and applies pending migrations, waiting
// as long as ctx allows for another process that is applying them. The
// pool's defaults are pgx's (at most max(4, number of CPUs) connections);
// a connection attempt gives up after connect_timeout, by default
// DefaultConnectTimeout.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migrationLock is the advisory lock key held while migrating.
var migrationLock = lockKey("mcpgate:migrations")

// lockKey maps a name to an advisory lock key.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, each in its own transaction, under a session-level
// advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: waiting for the migration lock: %w", err)
	}
	defer func() {
		// A failed unlock (a broken connection) ends with the session.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
			conn.Conn().Close(context.Background())
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("postgres: listing migrations: %w", err)
	}
	slices.Sort(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("postgres: migration %s: name must start with a number and '_'", base)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", base, err)
		}
		if err := apply(ctx, conn, version, base, string(body)); err != nil {
			return err
		}
	}
	return nil
}

// apply runs one migration in a transaction unless it is recorded.
func apply(ctx context.Context, conn *pgxpool.Conn, version int, name, body string) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		// No arguments: the simple protocol, which runs every statement
		// of the file.
		if _, err := tx.Exec(ctx, body, pgx.QueryExecModeSimpleProtocol); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`, version, name, time.Now().UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: migration %s: %w", name, err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v *int64
	if err := s.pool.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return int(*v), nil
}

// CheckWritable reports whether the database accepts writes: it starts a
// read-write transaction, asks for a transaction id (refused on a
// read-only server or a standby) and rolls back. Readiness probes use it.
func (s *Store) CheckWritable(ctx context.Context) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadWrite}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT txid_current()`)
		if err != nil {
			return err
		}
		return errRollback
	})
	if err != nil && !errors.Is(err, errRollback) {
		return fmt.Errorf("postgres: the database does not accept writes: %w", err)
	}
	return nil
}

// errRollback makes BeginFunc roll back.
var errRollback = errors.New("rollback")

// inTx runs fn in a transaction (committed if fn returns nil).
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// lockXact takes a transaction-scoped advisory lock on name.
func lockXact(ctx context.Context, tx pgx.Tx, name string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(name))
	return err
}

// params returns "$from, …, $(from+n-1)".
func params(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// upsertSet returns "c1 = excluded.c1, …" for the columns cols.
func upsertSet(cols []string) string {
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = excluded." + c
	}
	return strings.Join(set, ", ")
}

// splitCols splits a column list.
func splitCols(cols string) []string {
	out := strings.Split(cols, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
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

// nanos and fromNanos are ts and fromTS with times in UTC, as the gateway
// tables of store/sqlite use them.
func nanos(t time.Time) int64 { return ts(t) }

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func wrap(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	case isUnique(err):
		return fmt.Errorf("%s: %w", what, store.ErrExists)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

func mustAffect(tag pgconn.CommandTag, err error, what string) error {
	if err != nil {
		return wrap(what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// count returns how many rows a statement changed.
func count(tag pgconn.CommandTag, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// queryAll runs q and scans every row with scan.
func queryAll[T any](ctx context.Context, q querier, what string, scan func(pgx.Row) (*T, error), sql string, args ...any) ([]*T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap(what, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrap(what, err)
		}
		out = append(out, v)
	}
	return out, wrap(what, rows.Err())
}
