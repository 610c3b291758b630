package config

import "slices"

// Console configures the web console at /console/ (docs/console.md): who
// may sign in to it and what each may do. Users sign in through the
// built-in authorization server (auth "oauth"), so the names are local
// user names or token subjects. A user named in no list (and no
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

// ConsoleRole returns the console role of user: RoleAdministrator,
// RoleApprover (console.approvers or approvals.approvers), RoleViewer,
// or RoleNone. Without a console section every user has RoleNone.
func (c *Config) ConsoleRole(user string) string {
	cs := c.Console
	if cs == nil || user == "" {
		return RoleNone
	}
	switch {
	case slices.Contains(cs.Administrators, user):
		return RoleAdministrator
	case slices.Contains(cs.Approvers, user), c.Approvals != nil && slices.Contains(c.Approvals.Approvers, user):
		return RoleApprover
	case slices.Contains(cs.Viewers, user):
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
			if u == "" {
				v.add("console.%s[%d]: empty user name", l.name, i)
			}
		}
	}
}
