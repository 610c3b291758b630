package config

import (
	"slices"
	"strings"
)

// Console configures the web console at /console/ (docs/console.md): who
// may sign in to it and what each may do. Users sign in through the
// built-in authorization server (auth "oauth"), so the names are local
// user names or token subjects; an entry "group:NAME" names every local
// user in group NAME. A user named in no list (and no
// approvals.approvers) is refused.
type Console struct {
	// Viewers may read every page and the read-only API.
	Viewers []string `yaml:"viewers" json:"viewers,omitempty"`
	// Approvers may also decide approvals. The users of
	// approvals.approvers are approvers too.
	Approvers []string `yaml:"approvers" json:"approvers,omitempty"`
	// Administrators may do everything: revoke and reinstate, approve or
	// refuse clients and tools, and what approvers may do.
	Administrators []string `yaml:"administrators" json:"administrators,omitempty"`
}

// Console roles, from the least to the most allowed; each includes the
// ones before it.
const (
	RoleNone          = ""
	RoleViewer        = "viewer"
	RoleApprover      = "approver"
	RoleAdministrator = "administrator"
)

// ConsoleGroupPrefix starts an entry of a console list that names a group.
const ConsoleGroupPrefix = "group:"

// ConsoleRole returns the console role of user, a member of groups:
// RoleAdministrator, RoleApprover (console.approvers or
// approvals.approvers), RoleViewer, or RoleNone; the highest that names
// the user or one of the groups. Without a console section every user
// has RoleNone.
func (c *Config) ConsoleRole(user string, groups []string) string {
	cs := c.Console
	if cs == nil || user == "" {
		return RoleNone
	}
	names := func(list []string) bool {
		for _, e := range list {
			if g, ok := strings.CutPrefix(e, ConsoleGroupPrefix); ok {
				if slices.Contains(groups, g) {
					return true
				}
			} else if e == user {
				return true
			}
		}
		return false
	}
	switch {
	case names(cs.Administrators):
		return RoleAdministrator
	case names(cs.Approvers), c.Approvals != nil && slices.Contains(c.Approvals.Approvers, user):
		return RoleApprover
	case names(cs.Viewers):
		return RoleViewer
	}
	return RoleNone
}

// validate checks the console section against the rest of c.
func (cs *Console) validate(v *validator, c *Config) {
	if c.Auth != AuthOAuth {
		v.add("console: needs auth: oauth (users sign in to the console through the built-in authorization server)")
	}
	if c.DataDir == "" {
		v.add("console: needs a data directory")
	}
	for _, l := range []struct {
		name  string
		users []string
	}{{"viewers", cs.Viewers}, {"approvers", cs.Approvers}, {"administrators", cs.Administrators}} {
		for i, u := range l.users {
			if u == "" || u == ConsoleGroupPrefix {
				v.add("console.%s[%d]: empty user or group name", l.name, i)
			}
		}
	}
}
