package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/goccy/go-yaml"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/policy"
)

// ReloadResult is what a configuration reload did.
type ReloadResult struct {
	// Upstreams are the upstreams added, removed and replaced.
	gateway.UpstreamChanges
	// PoliciesReloaded is set when the policy files were read again;
	// PolicyVersion is the version in force after the reload.
	PoliciesReloaded bool   `json:"policies_reloaded,omitempty"`
	PolicyVersion    string `json:"policy_version,omitempty"`
	// Applied names the server settings changed live.
	Applied []string `json:"applied,omitempty"`
	// NeedRestart names the settings that changed but take effect only
	// after a restart (they are not applied).
	NeedRestart []string `json:"need_restart,omitempty"`
}

// reloadState is what Reload needs of what New built.
type reloadState struct {
	mu     sync.Mutex // one reload at a time
	cfg    *config.Config
	policy *policy.Engine
	audit  *audit.Log
}

// Reload applies cfg, a configuration read again, to the running gateway.
// cfg is checked in full first (config.Validate, the policy files and the
// rate-limits file load): if anything is wrong, nothing is applied, the
// running configuration stays in force, and the error lists every
// problem. Otherwise Reload applies the upstreams (added, removed,
// changed: see gateway.ApplyUpstreams), reloads the policy files, and
// applies the server settings that can change live (max_inflight,
// max_inflight_per_principal). Every other change is reported in
// NeedRestart and not applied. Each reload, accepted or rejected, is
// audited as config.reload.
func (a *App) Reload(ctx context.Context, cfg *config.Config) (*ReloadResult, error) {
	rs := &a.reload
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if err := checkReload(cfg); err != nil {
		a.logger.Error("configuration reload rejected; the running configuration stays in force", "error", err)
		a.auditReload(ctx, cfg, nil, err)
		return nil, err
	}
	res := &ReloadResult{NeedRestart: needRestart(rs.cfg, cfg)}
	var err error
	if res.UpstreamChanges, err = a.Gateway.ApplyUpstreams(ctx, cfg.Upstreams); err != nil {
		a.auditReload(ctx, cfg, res, err)
		return nil, err
	}
	if rs.policy != nil && !restartNamed(res.NeedRestart, "policy") {
		if err := rs.policy.Reload(); err != nil {
			// Checked above; the files changed again since.
			res.NeedRestart = append(res.NeedRestart, "policy (the files do not load: "+err.Error()+")")
		} else {
			res.PoliciesReloaded = true
		}
		res.PolicyVersion = rs.policy.Version()
	}
	oldLim, newLim := rs.cfg.Limits(), cfg.Limits()
	if oldLim.MaxInflight != newLim.MaxInflight || oldLim.MaxInflightPerPrincipal != newLim.MaxInflightPerPrincipal {
		a.Gateway.SetInflightBounds(newLim.MaxInflight, newLim.MaxInflightPerPrincipal)
		res.Applied = append(res.Applied, "server.max_inflight", "server.max_inflight_per_principal")
	}
	// What was applied is now the running configuration; what needs a
	// restart keeps being reported until then.
	next := *rs.cfg
	next.Upstreams = cfg.Upstreams
	if next.Server != nil || cfg.Server != nil {
		var s config.Server
		if next.Server != nil {
			s = *next.Server
		}
		if cfg.Server != nil {
			s.MaxInflight, s.MaxInflightPerPrincipal = cfg.Server.MaxInflight, cfg.Server.MaxInflightPerPrincipal
		} else {
			s.MaxInflight, s.MaxInflightPerPrincipal = 0, 0
		}
		next.Server = &s
	}
	rs.cfg = &next
	a.logger.Info("configuration reloaded", "added", res.Added, "removed", res.Removed, "changed", res.Changed,
		"policies_reloaded", res.PoliciesReloaded, "applied", res.Applied, "need_restart", res.NeedRestart)
	a.auditReload(ctx, cfg, res, nil)
	return res, nil
}

// ReloadRejected records a reload whose configuration could not be read
// or did not validate (err says why), as Reload records one it rejects:
// the running configuration stays in force.
func (a *App) ReloadRejected(ctx context.Context, err error) {
	a.reload.mu.Lock()
	defer a.reload.mu.Unlock()
	a.logger.Error("configuration reload rejected; the running configuration stays in force", "error", err)
	a.auditReload(ctx, nil, nil, err)
}

// checkReload checks a configuration in full without applying it: its
// validation, and that its policy files and rate-limits file load.
func checkReload(cfg *config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	var errs []error
	if p := cfg.Policy; p != nil {
		if _, err := policy.NewEngine(&policy.Options{Paths: p.Paths, DenyByDefault: p.DenyByDefault}); err != nil {
			errs = append(errs, fmt.Errorf("policies: %w", err))
		}
	}
	return errors.Join(errs...)
}

// restartNamed reports whether the top-level key is in names.
func restartNamed(names []string, key string) bool {
	for _, n := range names {
		if n == key || strings.HasPrefix(n, key+".") {
			return true
		}
	}
	return false
}

// needRestart names the settings that differ between the running
// configuration and the new one and that a reload does not apply: every
// top-level key but upstreams and server, and every server key but
// max_inflight and max_inflight_per_principal. Policy files are reloaded
// (their paths and deny_by_default need a restart), and so is nothing
// else of policy (limits needs a restart).
func needRestart(old, cfg *config.Config) []string {
	var out []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(cfg).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key := yamlKey(f)
		switch key {
		case "upstreams", "":
			continue
		case "server":
			out = append(out, serverRestart(old.Limits(), cfg.Limits())...)
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			out = append(out, key)
		}
	}
	return out
}

// serverRestart names the server keys that differ, but for those applied
// live.
func serverRestart(old, cur config.Server) []string {
	var out []string
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(cur)
	t := ov.Type()
	for i := range t.NumField() {
		key := yamlKey(t.Field(i))
		if key == "max_inflight" || key == "max_inflight_per_principal" {
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			out = append(out, "server."+key)
		}
	}
	return out
}

func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return k
}

// auditReload records a reload: the digest of the configuration read, a
// summary of what changed (or why it was rejected).
func (a *App) auditReload(ctx context.Context, cfg *config.Config, res *ReloadResult, reloadErr error) {
	if a.reload.audit == nil {
		return
	}
	target := "config"
	if cfg == nil {
		// The configuration did not even load.
	} else if raw, err := yaml.Marshal(cfg); err == nil {
		sum := sha256.Sum256(raw)
		target = "sha256:" + hex.EncodeToString(sum[:])
	}
	rec := &audit.Record{Action: "config.reload", Client: "mcpgate-reload", Target: target, Outcome: audit.OutcomeOK}
	if reloadErr != nil {
		rec.Outcome, rec.Error = audit.OutcomeError, "configuration rejected; the running one stays in force: "+reloadErr.Error()
	} else {
		rec.Target += " " + res.Summary()
		rec.PolicyVersion = res.PolicyVersion
	}
	if err := a.reload.audit.Append(ctx, rec); err != nil {
		a.logger.Error("auditing a configuration reload", "error", err)
	}
}

// Summary is a one-line account of the reload.
func (r *ReloadResult) Summary() string {
	list := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ",")
	}
	s := fmt.Sprintf("upstreams added: %s; removed: %s; changed: %s", list(r.Added), list(r.Removed), list(r.Changed))
	if r.PoliciesReloaded {
		s += "; policies reloaded"
	}
	if len(r.Applied) > 0 {
		s += "; applied: " + list(r.Applied)
	}
	if len(r.NeedRestart) > 0 {
		s += "; need a restart (not applied): " + list(r.NeedRestart)
	}
	return s
}
