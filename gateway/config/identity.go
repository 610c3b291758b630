package config

// IdentityAttributes returns the identity attributes of principals that
// the configured enterprise identity providers provide: none without one;
// with any trusted ID-JAG issuer or OIDC sign-in provider, "idp" and the
// attributes read from its tokens' claims of the same names ("email",
// "groups", "name", "roles"). Local users' attributes live in the store,
// not here. Policies are validated against this list (see
// docs/policy.md).
func (c *Config) IdentityAttributes() []string {
	if c.Auth != AuthOAuth || c.OAuth == nil || (len(c.OAuth.TrustedIssuers) == 0 && c.OAuth.OIDC == nil) {
		return nil
	}
	return []string{"email", "groups", "idp", "name", "roles"}
}
