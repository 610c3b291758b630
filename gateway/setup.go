package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/policy/ratelimit"
)

// setupControls builds the policy engine, the audit log and the approval
// service the configuration asks for, unless Options supplied them.
func (g *Gateway) setupControls(ctx context.Context) error {
	cfg := &g.cfg
	if g.opts.Policy == nil && cfg.Policy != nil {
		eng, err := policy.NewEngine(&policy.Options{Paths: cfg.Policy.Paths, DenyByDefault: cfg.Policy.DenyByDefault, Logger: g.logger})
		if err != nil {
			return fmt.Errorf("gateway: policies: %w", err)
		}
		g.opts.Policy = eng
		g.ownPolicy = true
		wctx, cancel := context.WithCancel(context.Background())
		go func() { <-g.done; cancel() }()
		eng.Watch(wctx, func(version string, err error) {
			// The watcher noticed the policy files change; the record says
			// so (Client), and carries the version now in force.
			rec := &audit.Record{Action: "policy.changed", Client: "policy-file-watcher", Target: strings.Join(cfg.Policy.Paths, ","), PolicyVersion: version, Outcome: "ok"}
			if err != nil {
				g.logger.Error("policy files changed but do not load; the previous policies stay in force", "version", version, "error", err)
				rec.Outcome, rec.Error = "error", "policy files changed but do not load; the previous policies stay in force: "+err.Error()
			} else {
				g.logger.Info("policies reloaded", "version", version)
			}
			_ = g.auditAppend(wctx, rec)
		})
	}
	if g.opts.Limiter == nil && cfg.Policy != nil && cfg.Policy.Limits != "" {
		lc, err := ratelimit.LoadConfig(cfg.Policy.Limits)
		if err != nil {
			return fmt.Errorf("gateway: rate limits: %w", err)
		}
		if g.opts.Limiter, err = ratelimit.NewLimiter(lc, nil); err != nil {
			return fmt.Errorf("gateway: rate limits: %w", err)
		}
	}
	if g.opts.Audit == nil && g.db != nil && (cfg.Audit == nil || !cfg.Audit.Disabled) {
		ao := &audit.Options{KeyPath: filepath.Join(cfg.DataDir, audit.DefaultKeyFile), Logger: g.logger}
		if a := cfg.Audit; a != nil {
			ao.KeepPayloads, ao.FailOpen = a.KeepPayloads, a.FailOpen
			ao.SigningKeyFile, ao.SigningCommand, ao.PublicKeyFile = a.SigningKeyFile, a.SigningCommand, a.PublicKeyFile
			ao.SigningTimeout, ao.CheckpointFile = a.SigningTimeout, a.CheckpointFile
			if a.JSONL != "" {
				e, err := audit.NewJSONLExporter(a.JSONL)
				if err != nil {
					return fmt.Errorf("gateway: audit export: %w", err)
				}
				ao.Exporters = append(ao.Exporters, e)
			}
			if s := a.Syslog; s != nil {
				tag := s.Tag
				if tag == "" {
					tag = "mcpgate"
				}
				e, err := audit.NewSyslogExporter(s.Network, s.Address, tag)
				if err != nil {
					return fmt.Errorf("gateway: audit syslog: %w", err)
				}
				ao.Exporters = append(ao.Exporters, e)
			}
			if a.OTLPEndpoint != "" {
				e, err := audit.NewOTelExporter(ctx, &audit.OTelOptions{Endpoint: a.OTLPEndpoint, ServiceName: "mcpgate"})
				if err != nil {
					return fmt.Errorf("gateway: audit OpenTelemetry export: %w", err)
				}
				ao.Exporters = append(ao.Exporters, e)
			}
		}
		l, err := audit.New(g.db, ao)
		if err != nil {
			return fmt.Errorf("gateway: audit log: %w", err)
		}
		g.opts.Audit = l
		g.ownAudit = true
	}
	if g.opts.Approvals == nil && cfg.Approvals != nil {
		if g.db == nil {
			return errors.New("gateway: approvals need a data directory")
		}
		approvers := cfg.Approvals.Approvers
		g.opts.Approvals = approval.New(g.db, &approval.Options{
			TTL:        cfg.Approvals.TTL,
			BaseURL:    g.baseURL() + "/approvals",
			Approver:   g.localApprover(approvers),
			OnDecision: g.ApprovalDecided,
			Audit:      g.opts.Audit,
			Logger:     g.logger,
		})
	}
	return nil
}

// baseURL is the gateway's external URL.
func (g *Gateway) baseURL() string {
	if g.cfg.PublicURL != "" {
		return strings.TrimRight(g.cfg.PublicURL, "/")
	}
	if g.cfg.Listen != "" {
		return "http://" + g.cfg.Listen
	}
	return "http://127.0.0.1"
}

// localApprover authenticates approvers on the approval pages with HTTP
// Basic authentication against the gateway's local users, allowing only
// the configured approvers.
func (g *Gateway) localApprover(approvers []string) func(r *http.Request) (string, bool) {
	return func(r *http.Request) (string, bool) {
		name, password, ok := r.BasicAuth()
		if !ok || !slices.Contains(approvers, name) || g.db == nil {
			return "", false
		}
		u, err := g.db.GetUser(r.Context(), name)
		if err != nil {
			return "", false
		}
		good, err := authserver.VerifyPassword(password, u.PasswordHash)
		if err != nil || !good {
			return "", false
		}
		return name, true
	}
}

// closeControls releases what setupControls made.
func (g *Gateway) closeControls() {
	if g.ownAudit && g.opts.Audit != nil {
		if err := g.opts.Audit.Close(); err != nil {
			g.logger.Error("closing the audit log", "error", err)
		}
	}
}

// auditConfig records the configuration the gateway starts with, as a
// digest of its YAML form (secrets are only named in the configuration,
// and the record holds just the digest), so that a change of configuration
// between runs shows in the audit log.
func (g *Gateway) auditConfig(ctx context.Context) {
	if g.opts.Audit == nil {
		return
	}
	raw, err := yaml.Marshal(g.cfg)
	if err != nil {
		g.logger.Warn("auditing the configuration", "error", err)
		return
	}
	sum := sha256.Sum256(raw)
	version := ""
	if g.opts.Policy != nil {
		version = g.opts.Policy.Version()
	}
	_ = g.auditAppend(ctx, &audit.Record{Action: "config.loaded", Target: "sha256:" + hex.EncodeToString(sum[:]), PolicyVersion: version, Outcome: "ok"})
}
