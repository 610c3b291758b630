// Package datadir is the layout of mcpgate's data directory: the file
// names of the database, the audit log's checkpoint signing key and the
// key that seals per-user upstream tokens, and how the database is opened
// (SQLite in the data directory by default, PostgreSQL when a database
// URL is configured: OpenDB).
// The gateway's wiring (internal/app) and the command-line packages
// (internal/cli/...) both use it, so that they agree on where things are.
package datadir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/upstreamauth"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// The files in a data directory. The names are those their packages use
// by default.
const (
	// DatabaseFile is the SQLite database: identities, tokens, tasks,
	// inventory, approvals and the audit chain.
	DatabaseFile = sqlite.DefaultFile
	// AuditKeyFile is the Ed25519 key that signs audit checkpoints.
	AuditKeyFile = audit.DefaultKeyFile
	// UpstreamTokenKeyFile is the key that seals per-user upstream tokens.
	UpstreamTokenKeyFile = upstreamauth.KeyFile
)

// Database returns the path of the database in dir.
func Database(dir string) string { return filepath.Join(dir, DatabaseFile) }

// AuditKey returns the path of the audit signing key in dir.
func AuditKey(dir string) string { return filepath.Join(dir, AuditKeyFile) }

// UpstreamTokenKey returns the path of the upstream token key in dir.
func UpstreamTokenKey(dir string) string { return filepath.Join(dir, UpstreamTokenKeyFile) }

// errNoDir is returned for an empty data directory.
var errNoDir = errors.New("no data directory configured")

// Open opens the database in dir, creating the directory (mode 0700) and
// the database if they are missing.
func Open(ctx context.Context, dir string) (*sqlite.Store, error) {
	if dir == "" {
		return nil, errNoDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	return sqlite.Open(ctx, Database(dir))
}

// OpenExisting opens the database in dir; it fails, without creating
// anything, when there is none.
func OpenExisting(ctx context.Context, dir string) (*sqlite.Store, error) {
	if dir == "" {
		return nil, errNoDir
	}
	path := Database(dir)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no mcpgate database at %s (has the gateway run with this data directory?): %w", path, err)
	}
	return sqlite.Open(ctx, path)
}

// DB is the gateway's database: every store interface, as store/sqlite
// and store/postgres both implement them, with the readiness probe and
// the revocation feed of the token cache.
type DB interface {
	store.Store
	store.AuditLog
	store.AuditSyncer
	store.Approvals
	store.GatewaySessions
	store.UpstreamRecords
	store.GatewayTasks
	store.InventoryStore
	store.GrantLister
	store.UpstreamStates
	store.UpstreamTokenStore
	// CheckWritable reports whether the database accepts writes.
	CheckWritable(ctx context.Context) error
	// TokenRevocationVersion changes whenever an access token is revoked,
	// by any process.
	TokenRevocationVersion(ctx context.Context) (int64, error)
	// OnTokenRevoked registers fn, called after every revocation of access
	// tokens through this handle.
	OnTokenRevoked(fn func())
}

var (
	_ DB = (*sqlite.Store)(nil)
	_ DB = (*postgres.Store)(nil)
)

// DatabaseURLEnv is the environment variable that names a PostgreSQL
// database (the configuration's database_url; the --database-url flag
// overrides it).
const DatabaseURLEnv = "MCPGATE_DATABASE_URL"

// OpenDB opens the gateway's database: the PostgreSQL database at
// databaseURL (a postgres:// or postgresql:// URL) when it is set,
// otherwise the SQLite database in dir, created as Open does. The data
// directory still holds the keys (AuditKey, UpstreamTokenKey) either way.
func OpenDB(ctx context.Context, dir, databaseURL string) (DB, error) {
	if databaseURL == "" {
		db, err := Open(ctx, dir)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return db, nil
	}
	if !postgres.IsURL(databaseURL) {
		return nil, errors.New("database URL: want postgres://… or postgresql://…")
	}
	db, err := postgres.Open(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// databaseURLKey is the context key of WithDatabaseURL.
type databaseURLKey struct{}

// WithDatabaseURL returns ctx carrying url, the PostgreSQL database that
// the command-line commands open (OpenCommand) instead of the SQLite
// database of the data directory. An empty url means SQLite.
func WithDatabaseURL(ctx context.Context, url string) context.Context {
	return context.WithValue(ctx, databaseURLKey{}, url)
}

// DatabaseURLFrom returns the database URL carried by ctx
// (WithDatabaseURL), or "" for none.
func DatabaseURLFrom(ctx context.Context) string {
	u, _ := ctx.Value(databaseURLKey{}).(string)
	return u
}

// OpenCommand opens the database a command-line command works on: the
// PostgreSQL database named by ctx (WithDatabaseURL) when there is one,
// whose schema it creates or upgrades as the gateway does; otherwise the
// SQLite database in dir, created when create is true (Open) and required
// to exist when it is false (OpenExisting).
func OpenCommand(ctx context.Context, dir string, create bool) (DB, error) {
	if u := DatabaseURLFrom(ctx); u != "" {
		return OpenDB(ctx, dir, u)
	}
	var (
		db  *sqlite.Store
		err error
	)
	if create {
		db, err = Open(ctx, dir)
	} else {
		db, err = OpenExisting(ctx, dir)
	}
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return db, nil
}
