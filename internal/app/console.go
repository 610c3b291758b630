package app

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/mcpgate/mcpgate/internal/keyfile"

	"github.com/mcpgate/mcpgate/console"
	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/oauth/authserver"
)

// console builds the web console when the configuration has a console
// section, on the controls already in gopts, and gives it to the
// gateway to mount at /console/. Users sign in through the built-in
// authorization server (Validate requires auth "oauth" and a data
// directory).
func (a *App) console(cfg *config.Config, db datadir.DB, gopts *gateway.Options) error {
	if cfg.Console == nil || gopts.Auth == nil || db == nil {
		return nil
	}
	as := gopts.Auth.Server
	key, err := keyfile.LoadOrCreate(filepath.Join(cfg.DataDir, ConsoleSessionKeyFile), 32)
	if err != nil {
		return fmt.Errorf("console: session key: %w", err)
	}
	o := &console.Options{
		SessionKey:  key,
		BaseURL:     baseURL(cfg) + "/console",
		SignIn:      as,
		TicketParam: authserver.SignInTicketParam,
		SignOutURL:  urlPath(as.Issuer()) + "/logout",
		Role:        consoleRole(cfg, db),
		Store:       db,
		Inventory:   gopts.Inventory,
		Revoker:     gopts.Revoker,
		Audit:       gopts.Audit,
		Policy:      gopts.Policy,
		Approvals:   gopts.Approvals,
		Logger:      a.logger.With("component", "console"),
	}
	if gopts.Audit != nil {
		o.AuditStore = db
	}
	if cfg.Policy != nil {
		o.PolicyPaths = cfg.Policy.Paths
	}
	c, err := console.New(o)
	if err != nil {
		return err
	}
	gopts.Console = c.Handler()
	return nil
}

// ConsoleSessionKeyFile is the file in the data directory holding the
// key that signs console sessions (created on first use, mode 0600), so
// that they survive a restart.
const ConsoleSessionKeyFile = "console-session.key"

// consoleRole returns the console's Role: the configuration's role of
// the user, with, for the "group:NAME" entries, the groups the OIDC
// provider asserted at sign-in and the groups of a local user
// (store.User.Groups, read on every request).
func consoleRole(cfg *config.Config, db datadir.DB) func(ctx context.Context, user string, idpGroups []string) string {
	return func(ctx context.Context, user string, idpGroups []string) string {
		groups := slices.Clone(idpGroups)
		if u, err := db.GetUser(ctx, user); err == nil {
			groups = append(groups, u.Groups...)
		}
		return cfg.ConsoleRole(user, groups)
	}
}
