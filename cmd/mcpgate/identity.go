package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/policy"
)

// providedAttributes returns the identity attributes some source
// configured for cfg provides: its enterprise identity providers and the
// local users in its database (PostgreSQL, or SQLite when the data
// directory has one).
func providedAttributes(ctx context.Context, cfg *config.Config) ([]string, error) {
	src := policy.IdentitySources{}
	if a := cfg.IdentityAttributes(); a != nil {
		src.IdPs = [][]string{a}
	}
	db, err := existingDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if db == nil {
		return policy.ProvidedAttributes(src), nil
	}
	defer db.Close()
	users, err := db.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	add := func(a string) {
		if !slices.Contains(src.LocalUsers, a) {
			src.LocalUsers = append(src.LocalUsers, a)
		}
	}
	for _, u := range users {
		if len(u.Groups) > 0 {
			add(policy.AttrGroups)
		}
		if len(u.Roles) > 0 {
			add(policy.AttrRoles)
		}
		if u.Email != "" {
			add(policy.AttrEmail)
		}
	}
	return policy.ProvidedAttributes(src), nil
}

// existingDB opens cfg's database: the PostgreSQL database of
// database_url, or the SQLite database of the data directory when there
// is one (nil, nil when there is none).
func existingDB(ctx context.Context, cfg *config.Config) (datadir.DB, error) {
	if cfg.DatabaseURL != "" {
		return datadir.OpenDB(ctx, cfg.DataDir, cfg.DatabaseURL)
	}
	if cfg.DataDir == "" {
		return nil, nil
	}
	if _, err := os.Stat(datadir.Database(cfg.DataDir)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	db, err := datadir.OpenExisting(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// policyAttributeWarnings returns the warnings of the configured policies
// about principal attributes no configured source provides.
func policyAttributeWarnings(ctx context.Context, cfg *config.Config) ([]string, error) {
	if cfg.Policy == nil || len(cfg.Policy.Paths) == 0 {
		return nil, nil
	}
	e, err := policy.NewEngine(&policy.Options{Paths: cfg.Policy.Paths})
	if err != nil {
		return nil, err
	}
	provided, err := providedAttributes(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return e.AttributeWarnings(provided), nil
}

// policySources is what `mcpgate policy validate` checks policies against:
// the sources of identity of the --config file and the data directory.
// ok is false when neither --config nor --data-dir is given.
func (g *globalFlags) policySources(ctx context.Context) (provided []string, ok bool, err error) {
	if g.configFile == "" && g.dataDir == "" {
		return nil, false, nil
	}
	cfg := &config.Config{}
	if g.configFile != "" {
		if cfg, err = config.Load(g.configFile); err != nil {
			return nil, false, err
		}
	}
	if cfg.DataDir, err = g.resolveDataDir(); err != nil {
		return nil, false, err
	}
	provided, err = providedAttributes(ctx, cfg)
	return provided, err == nil, err
}
