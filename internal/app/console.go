package app

import (
	"context"

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
	o := &console.Options{
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

// consoleRole returns the console's Role: the configuration's role of
// the user, with the groups of a local user (store.User.Groups) for the
// "group:NAME" entries.
func consoleRole(cfg *config.Config, db datadir.DB) func(ctx context.Context, user string) string {
	return func(ctx context.Context, user string) string {
		var groups []string
		if u, err := db.GetUser(ctx, user); err == nil {
			groups = u.Groups
		}
		return cfg.ConsoleRole(user, groups)
	}
}
