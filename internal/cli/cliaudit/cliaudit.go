// Package cliaudit records the administrative acts of the command line
// (approving tools, approving and refusing clients, adding and removing
// users and clients,
// revoking and reinstating identities) in the gateway's audit log: the
// same hash chain, in the same database, signed with the same checkpoint
// key as the gateway's own records.
//
// The command line may run while a gateway uses the same database; the
// audit log links every batch to the chain head it reads inside its write
// transaction (store.AuditChainer), so the two writers never fork the
// chain.
package cliaudit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store"
)

// Client is the Client of every record the command line writes: it tells
// administrative acts from the command line apart from the gateway's own
// records.
const Client = "mcpgate-cli"

// Audit actions of administrative acts.
const (
	ActionUserAdded        = "admin.user.added"
	ActionUserRemoved      = "admin.user.removed"
	ActionClientAdded      = "admin.client.added"
	ActionClientRemoved    = "admin.client.removed"
	ActionToolApproved     = "admin.tool.approved"
	ActionClientApproved   = "admin.client.approved"
	ActionClientRefused    = "admin.client.refused"
	ActionRevocation       = "admin.revocation"
	ActionRevocationLifted = "admin.revocation.lifted"
	ActionTaskCancelled    = "admin.task.cancelled"
)

// Actor returns the name of the operating-system user running the
// command: the actor of its records. It falls back to $USER (or
// $USERNAME), then to "unknown".
func Actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, v := range []string{"USER", "USERNAME"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return "unknown"
}

// Recorder appends records of administrative acts.
type Recorder struct {
	log   *audit.Log
	actor string
}

// Options returns the audit options that sign checkpoints as the gateway
// configured by a does: with a.SigningKeyFile or a.SigningCommand when
// set, else with the key in dataDir (datadir.AuditKeyFile, created if
// missing); checked against a.PublicKeyFile, and appended to
// a.CheckpointFile. a may be nil.
func Options(dataDir string, a *config.Audit) *audit.Options {
	o := &audit.Options{KeyPath: datadir.AuditKey(dataDir)}
	if a != nil {
		o.SigningKeyFile, o.SigningCommand, o.PublicKeyFile = a.SigningKeyFile, a.SigningCommand, a.PublicKeyFile
		o.SigningTimeout, o.CheckpointFile = a.SigningTimeout, a.CheckpointFile
	}
	return o
}

type configKey struct{}

// WithConfig returns ctx carrying the configuration's audit section (the
// command line's root puts it in each data command's context, having
// loaded --config), for Open and the audit commands.
func WithConfig(ctx context.Context, a *config.Audit) context.Context {
	return context.WithValue(ctx, configKey{}, a)
}

// ConfigFrom returns the audit section put in ctx by WithConfig, or nil.
func ConfigFrom(ctx context.Context) *config.Audit {
	a, _ := ctx.Value(configKey{}).(*config.Audit)
	return a
}

// Open opens the audit log kept in st, signing checkpoints as the gateway
// does (see Options) with the audit configuration in ctx (ConfigFrom).
// Commands open it before they act, so that an act that could not be
// recorded is not carried out.
func Open(ctx context.Context, st store.AuditLog, dataDir string) (*Recorder, error) {
	if dataDir == "" {
		return nil, errors.New("no data directory configured")
	}
	o := Options(dataDir, ConfigFrom(ctx))
	o.Logger = slog.New(slog.DiscardHandler)
	l, err := audit.New(st, o)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return &Recorder{log: l, actor: Actor()}, nil
}

// Record appends rec, with the operating-system user as User and Client
// as Client. A record that could not be stored is reported as an error
// saying that the act was done.
func (r *Recorder) Record(ctx context.Context, rec *audit.Record) error {
	rec.User, rec.Client = r.actor, Client
	if rec.Outcome == "" {
		rec.Outcome = audit.OutcomeOK
	}
	if err := r.log.Append(context.WithoutCancel(ctx), rec); err != nil {
		return fmt.Errorf("done, but not recorded in the audit log (%s %s): %w", rec.Action, rec.Target, err)
	}
	return nil
}

// Close signs a checkpoint over the records appended and closes the log
// (not the store).
func (r *Recorder) Close() error { return r.log.Close() }

// ClientDecisionRecord returns the audit record of an administrator's
// decision on client id (status store.ClientApproved or ClientRefused) by
// by, whose detail inventory.DecideClient wrote; failed marks a decision
// whose consequences failed in part.
func ClientDecisionRecord(id, status, detail, by string, failed bool) *audit.Record {
	r := &audit.Record{Action: ActionClientApproved, Target: id, Error: detail + "; by " + by}
	if status == store.ClientRefused {
		r.Action = ActionClientRefused
	}
	if failed {
		r.Outcome = audit.OutcomeError
	}
	return r
}
