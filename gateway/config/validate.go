package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Defaults.
const (
	// DefaultListen is the address the gateway listens on by default.
	DefaultListen = "127.0.0.1:8080"
	// AuthNone lets any caller in; AuthOAuth protects /mcp with the
	// built-in authorization server.
	AuthNone  = "none"
	AuthOAuth = "oauth"
)

// Credential types.
const (
	CredentialsNone                   = "none"
	CredentialsHeader                 = "header"
	CredentialsBearer                 = "bearer"
	CredentialsOAuthClientCredentials = "oauth_client_credentials"
	CredentialsOAuthUser              = "oauth_user"
	CredentialsEnterprise             = "enterprise"
)

// Upstream transports.
const (
	TransportStreamable = "streamable"
	TransportSSE        = "sse"
)

// ApplyDefaults fills in the values left empty: Listen (DefaultListen),
// Auth (AuthNone) and DataDir (DefaultDataDir). It fails only when no data
// directory can be determined.
func (c *Config) ApplyDefaults() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Auth == "" {
		c.Auth = AuthNone
	}
	if c.DataDir == "" {
		d, err := DefaultDataDir()
		if err != nil {
			return err
		}
		c.DataDir = d
	}
	return nil
}

// DefaultDataDir returns the default data directory: $XDG_DATA_HOME/mcpgate
// when XDG_DATA_HOME is set, else ~/.local/share/mcpgate on Unix systems,
// ~/Library/Application Support/mcpgate on macOS and
// %LocalAppData%\mcpgate on Windows.
func DefaultDataDir() (string, error) {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "mcpgate"), nil
	}
	var base string
	var err error
	switch runtime.GOOS {
	case "darwin", "ios":
		base, err = os.UserConfigDir() // ~/Library/Application Support
	case "windows":
		base, err = os.UserCacheDir() // %LocalAppData%
	case "plan9":
		base, err = os.UserConfigDir()
	default:
		var home string
		home, err = os.UserHomeDir()
		base = filepath.Join(home, ".local", "share")
	}
	if err != nil {
		return "", fmt.Errorf("config: no default data directory (set data_dir or --data-dir): %w", err)
	}
	return filepath.Join(base, "mcpgate"), nil
}

// ValidationError lists every problem Validate found.
type ValidationError struct {
	// Problems are one-line descriptions, each naming the upstream it
	// concerns.
	Problems []string
}

// Error returns the problems, one per line.
func (e *ValidationError) Error() string {
	return strings.Join(e.Problems, "\n")
}

// Validate checks the configuration and reports every problem at once as a
// *ValidationError. It expects ApplyDefaults to have run (an empty Listen
// or Auth is reported). Secret values never appear in its messages.
func (c *Config) Validate() error {
	v := &validator{}
	if c.Listen == "" {
		v.add("listen: empty")
	} else if err := checkListen(c.Listen); err != nil {
		v.add("listen: %v", err)
	}
	switch c.Auth {
	case AuthNone, AuthOAuth:
	case "":
		v.add("auth: empty (want none or oauth)")
	default:
		v.add("auth: %q is not supported (want none or oauth)", c.Auth)
	}
	if c.PublicURL != "" {
		if err := checkURL(c.PublicURL); err != nil {
			v.add("public_url: %v", err)
		} else if u, _ := url.Parse(c.PublicURL); u.RawQuery != "" {
			v.add("public_url: must not have a query")
		}
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		// The URL may hold a password: it is not repeated.
		v.add("database_url: want a postgres:// or postgresql:// URL")
	}
	if len(c.Upstreams) == 0 {
		v.add("upstreams: none configured (add upstreams to the config file or pass --servers)")
	}
	v.server(c.Server, len(c.Upstreams))
	v.observability(c.Observability)
	if c.Console != nil {
		c.Console.validate(v, c)
	}
	if c.Policy != nil && len(c.Policy.Paths) == 0 && !c.Policy.DenyByDefault {
		v.add("policy: no paths given (list policy files or directories, or remove the section)")
	}
	if inv := c.Inventory; inv != nil {
		switch inv.NewTools {
		case "", NewToolsAllow, NewToolsApprove:
		default:
			v.add("inventory.new_tools: %q is not supported (want allow or approve)", inv.NewTools)
		}
		if inv.RecheckSeenWithin < 0 || inv.RecheckMaxClients < 0 || inv.RecheckTimeout < 0 {
			v.add("inventory: recheck_seen_within, recheck_max_clients and recheck_timeout must not be negative")
		}
	}
	if a := c.Audit; a != nil {
		a.validate(v)
	}
	if a := c.Audit; a != nil && a.Syslog != nil {
		switch a.Syslog.Network {
		case "udp", "tcp", "unix", "unixgram":
		default:
			v.add("audit.syslog.network: %q is not supported (want udp, tcp or unix)", a.Syslog.Network)
		}
		if a.Syslog.Address == "" {
			v.add("audit.syslog.address: empty")
		}
	}
	if c.MaxTaskTTL < 0 {
		v.add("max_task_ttl: negative")
	}
	if o := c.OAuth; o != nil {
		if c.Auth != AuthOAuth {
			v.add("oauth: only used with auth: oauth")
		}
		for i, ti := range o.TrustedIssuers {
			if err := checkURL(ti.Issuer); err != nil {
				v.add("oauth.trusted_issuers[%d].issuer: %v", i, err)
			}
			if err := checkURL(ti.JWKSURL); err != nil {
				v.add("oauth.trusted_issuers[%d].jwks_url: %v", i, err)
			}
		}
		if l := o.OIDC; l != nil {
			if err := checkURL(l.Issuer); err != nil {
				v.add("oauth.oidc.issuer: %v", err)
			}
			if l.ClientID == "" {
				v.add("oauth.oidc.client_id: empty")
			}
			if (l.ClientSecretEnv == "") == (l.ClientSecretFile == "") {
				v.add("oauth.oidc: set exactly one of client_secret_env and client_secret_file")
			}
		}
		if cl := o.Clients; cl != nil {
			if cl.CIMD != nil {
				cl.CIMD.validate(v, "oauth.clients.cimd", "cimd")
			}
			if d := cl.Dynamic; d != nil {
				d.Path().validate(v, "oauth.clients.dynamic", "dynamic")
				if rl := d.RateLimit; rl != nil && (rl.PerMinute < 0 || rl.Burst < 0) {
					v.add("oauth.clients.dynamic.rate_limit: per_minute and burst must not be negative")
				}
				if d.MaxClients < 0 {
					v.add("oauth.clients.dynamic.max_clients: negative")
				}
				if d.MaxMetadataBytes < 0 || d.MaxMetadataBytes > 1<<20 {
					v.add("oauth.clients.dynamic.max_metadata_bytes: %d is out of range (0 to 1048576)", d.MaxMetadataBytes)
				}
				if d.UnusedTTL < 0 {
					v.add("oauth.clients.dynamic.unused_ttl: negative")
				}
			}
			if cl.PreRegistered != nil {
				cl.PreRegistered.validate(v, "oauth.clients.pre_registered", "pre_registered")
			}
		}
		for i, id := range o.IntrospectionClients {
			if id == "" || strings.ContainsAny(id, " \t\r\n") {
				v.add("oauth.introspection_clients[%d]: %q is not a client id", i, id)
			}
		}
	}
	seen := make(map[string]int)
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		where := fmt.Sprintf("upstreams[%d]", i)
		if u.Name != "" {
			where = fmt.Sprintf("upstream %q", u.Name)
			if j, dup := seen[u.Name]; dup {
				v.add("%s: name used twice (upstreams[%d] and upstreams[%d])", where, j, i)
			} else {
				seen[u.Name] = i
			}
		}
		u.validate(v, where, c.Auth)
	}
	if len(v.problems) > 0 {
		return &ValidationError{Problems: v.problems}
	}
	return nil
}

// validate checks the checkpoint signing settings.
func (a *Audit) validate(v *validator) {
	if a.SigningKeyFile != "" && len(a.SigningCommand) > 0 {
		v.add("audit: set signing_key_file or signing_command, not both")
	}
	if len(a.SigningCommand) > 0 {
		if a.SigningCommand[0] == "" {
			v.add("audit.signing_command: empty program name")
		}
		if a.PublicKeyFile == "" {
			v.add("audit.signing_command: needs audit.public_key_file to check the command's signatures")
		}
	}
	if a.SigningTimeout < 0 {
		v.add("audit.signing_timeout: negative")
	}
	switch a.Sync {
	case "", "always", "group", "os":
	default:
		v.add("audit.sync: %q is not a sync policy (want always, group or os)", a.Sync)
	}
	if a.GroupWindow < 0 {
		v.add("audit.group_window: negative")
	}
	if a.GroupWindow > 0 && a.Sync != "" && a.Sync != "group" {
		v.add("audit.group_window: only applies to audit.sync group")
	}
	if a.CheckpointFile != "" && a.CheckpointFile == a.JSONL {
		v.add("audit.checkpoint_file: the same file as audit.jsonl (the export already holds the checkpoints)")
	}
}

type validator struct{ problems []string }

func (v *validator) add(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (u *Upstream) validate(v *validator, where, auth string) {
	switch {
	case u.Name == "":
		v.add("%s: name is required", where)
	case !validName(u.Name):
		v.add("%s: name may contain only letters, digits, '_', '-' and '.' (at most 64)", where)
	}
	if u.Prefix != nil && *u.Prefix != "" && !validName(*u.Prefix) {
		v.add("%s: prefix %q may contain only letters, digits, '_', '-' and '.' (at most 64)", where, *u.Prefix)
	}
	hasURL, hasCmd := u.URL != "", len(u.Command) > 0
	switch {
	case hasURL && hasCmd:
		v.add("%s: set either url or command, not both", where)
	case !hasURL && !hasCmd:
		v.add("%s: set url (a remote server) or command (a local stdio server)", where)
	}
	if hasURL {
		if err := checkURL(u.URL); err != nil {
			v.add("%s: url: %v", where, err)
		}
		switch u.Transport {
		case "", TransportStreamable, TransportSSE:
		default:
			v.add("%s: transport %q is not supported (want streamable or sse, or leave it out to detect)", where, u.Transport)
		}
		if len(u.Env) > 0 {
			v.add("%s: env applies only to command upstreams", where)
		}
		if len(u.PassEnv) > 0 {
			v.add("%s: pass_env applies only to command upstreams", where)
		}
		if u.Cwd != "" {
			v.add("%s: cwd applies only to command upstreams", where)
		}
		for _, h := range sortedKeys(u.Headers) {
			if !validHeaderName(h) {
				v.add("%s: headers: %q is not a valid header name", where, h)
			} else if reservedHeader(h) {
				v.add("%s: headers: %s is set by the gateway and cannot be configured", where, h)
			}
		}
	}
	if hasCmd {
		if u.Command[0] == "" {
			v.add("%s: command: the program (first element) is empty", where)
		}
		if u.Transport != "" {
			v.add("%s: transport applies only to url upstreams", where)
		}
		if len(u.Headers) > 0 {
			v.add("%s: headers apply only to url upstreams", where)
		}
		for _, k := range sortedKeys(u.Env) {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				v.add("%s: env: %q is not a valid variable name", where, k)
			}
		}
		for _, k := range u.PassEnv {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				v.add("%s: pass_env: %q is not a variable name (give names only, without =value)", where, k)
			}
		}
	}
	if u.Timeout < 0 {
		v.add("%s: timeout must not be negative", where)
	}
	switch u.Roots {
	case "", RootsNone, RootsRelay:
		if len(u.FixedRoots) > 0 {
			v.add("%s: fixed_roots apply only with roots: fixed", where)
		}
	case RootsFixed:
		if len(u.FixedRoots) == 0 {
			v.add("%s: roots: fixed needs fixed_roots", where)
		}
		for i, r := range u.FixedRoots {
			if !strings.HasPrefix(r.URI, "file://") {
				v.add("%s: fixed_roots[%d]: uri %q must be a file:// URI", where, i, r.URI)
			}
		}
	default:
		v.add("%s: roots %q is not supported (want none, fixed or relay)", where, u.Roots)
	}
	if u.Protocol != "" && !slices.Contains(upstreamProtocols, u.Protocol) {
		v.add("%s: protocol %q is not a revision the gateway speaks (want one of %s, or leave it out to discover)", where, u.Protocol, strings.Join(upstreamProtocols, ", "))
	}
	if u.Credentials != nil {
		u.Credentials.validate(v, where, hasCmd, auth)
	}
}

func (c *Credentials) validate(v *validator, where string, stdio bool, auth string) {
	where += ": credentials"
	// unexpected reports the fields set that the type does not use.
	unexpected := func(allowed ...string) {
		set := map[string]bool{
			"header":                 c.Header != "",
			"value_env":              c.ValueEnv != "",
			"value_file":             c.ValueFile != "",
			"client_id":              c.ClientID != "",
			"client_secret_env":      c.ClientSecretEnv != "",
			"client_secret_file":     c.ClientSecretFile != "",
			"scopes":                 len(c.Scopes) > 0,
			"token_url":              c.TokenURL != "",
			"idp_token_url":          c.IdPTokenURL != "",
			"idp_client_id":          c.IdPClientID != "",
			"idp_client_secret_env":  c.IdPClientSecretEnv != "",
			"idp_client_secret_file": c.IdPClientSecretFile != "",
		}
		for _, k := range []string{"header", "value_env", "value_file", "client_id", "client_secret_env", "client_secret_file", "scopes", "token_url",
			"idp_token_url", "idp_client_id", "idp_client_secret_env", "idp_client_secret_file"} {
			if set[k] && !slices.Contains(allowed, k) {
				v.add("%s: %s does not apply to type %s", where, k, c.Type)
			}
		}
	}
	if stdio && c.Type != CredentialsNone && c.Type != "" {
		v.add("%s: credentials apply only to url upstreams (pass secrets to a command through env)", where)
	}
	// exactlyOne checks that exactly one source of a secret is given.
	exactlyOne := func(what string, env, file, literal string) {
		n := 0
		for _, s := range []string{env, file, literal} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			v.add("%s: type %s needs exactly one of %s_env or %s_file", where, c.Type, what, what)
		}
	}
	switch c.Type {
	case CredentialsNone:
		unexpected()
	case CredentialsHeader:
		unexpected("header", "value_env", "value_file")
		switch {
		case c.Header == "":
			v.add("%s: type header needs header (the header name, e.g. X-API-Key)", where)
		case !validHeaderName(c.Header):
			v.add("%s: header %q is not a valid header name", where, c.Header)
		case reservedHeader(c.Header):
			v.add("%s: header %s is set by the gateway and cannot be configured", where, c.Header)
		}
		exactlyOne("value", c.ValueEnv, c.ValueFile, c.Value)
	case CredentialsBearer:
		unexpected("value_env", "value_file")
		exactlyOne("value", c.ValueEnv, c.ValueFile, c.Value)
	case CredentialsOAuthClientCredentials:
		unexpected("client_id", "client_secret_env", "client_secret_file", "scopes", "token_url")
		if c.ClientID == "" {
			v.add("%s: type oauth_client_credentials needs client_id", where)
		}
		exactlyOne("client_secret", c.ClientSecretEnv, c.ClientSecretFile, "")
		if c.TokenURL != "" {
			if err := checkURL(c.TokenURL); err != nil {
				v.add("%s: token_url: %v", where, err)
			}
		}
	case CredentialsOAuthUser:
		unexpected("client_id", "client_secret_env", "client_secret_file", "scopes", "token_url")
		if c.ClientSecretEnv != "" && c.ClientSecretFile != "" {
			v.add("%s: set at most one of client_secret_env and client_secret_file", where)
		}
		if (c.ClientSecretEnv != "" || c.ClientSecretFile != "") && c.ClientID == "" {
			v.add("%s: a client secret needs client_id", where)
		}
		if c.TokenURL != "" {
			if err := checkURL(c.TokenURL); err != nil {
				v.add("%s: token_url: %v", where, err)
			}
		}
		if auth != AuthOAuth {
			v.add("%s: type oauth_user needs auth: oauth (the gateway must know who the user is)", where)
		}
	case CredentialsEnterprise:
		c.validateEnterprise(v, where, unexpected, auth)
	case "":
		v.add("%s: type is required (none, header, bearer, oauth_client_credentials, oauth_user or enterprise)", where)
	default:
		v.add("%s: type %q is not supported (want none, header, bearer, oauth_client_credentials, oauth_user or enterprise)", where, c.Type)
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			v.add("%s: scope %q is not a valid OAuth scope token", where, s)
		}
	}
}

// checkListen checks a host:port listen address.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8080 or :8080)", addr)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q has an invalid host", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// checkURL checks an absolute http or https URL. Its errors never repeat
// the URL (it may carry secrets in its query).
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a valid URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		if u.Scheme == "" {
			return errors.New("must be absolute, starting with http:// or https://")
		}
		return fmt.Errorf("scheme %q is not supported (want http or https)", u.Scheme)
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not contain a user name or password (use credentials)")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	}
	return nil
}

// validName reports whether s can be an upstream name or prefix: tool names
// are built from it, and MCP tool names use letters, digits, '_', '-' and
// '.'.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is an HTTP field name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// reservedHeader reports whether the gateway sets header h itself.
func reservedHeader(h string) bool {
	switch strings.ToLower(h) {
	case "host", "content-length", "content-type", "accept", "connection", "transfer-encoding",
		"mcp-session-id", "mcp-protocol-version", "last-event-id":
		return true
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// LogValue implements slog.LogValuer: the upstream's name and where it
// runs, without env values, header values or credentials.
func (u Upstream) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("name", u.Name)}
	if u.URL != "" {
		attrs = append(attrs, slog.String("url", redactURL(u.URL)))
	}
	if len(u.Command) > 0 {
		attrs = append(attrs, slog.String("command", u.Command[0]), slog.Int("args", len(u.Command)-1))
	}
	if u.Credentials != nil {
		attrs = append(attrs, slog.String("credentials", u.Credentials.Type))
	}
	return slog.GroupValue(attrs...)
}

// LogValue implements slog.LogValuer: the credential type and header name,
// never a secret.
func (c Credentials) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("type", c.Type)}
	if c.Header != "" {
		attrs = append(attrs, slog.String("header", c.Header))
	}
	if c.ClientID != "" {
		attrs = append(attrs, slog.String("client_id", c.ClientID))
	}
	if c.IdPTokenURL != "" {
		attrs = append(attrs, slog.String("idp_token_url", redactURL(c.IdPTokenURL)), slog.String("idp_client_id", c.IdPClientID))
	}
	return slog.GroupValue(attrs...)
}

// validateEnterprise checks credentials of type "enterprise".
func (c *Credentials) validateEnterprise(v *validator, where string, unexpected func(...string), auth string) {
	unexpected("client_id", "client_secret_env", "client_secret_file", "scopes", "token_url",
		"idp_token_url", "idp_client_id", "idp_client_secret_env", "idp_client_secret_file")
	if c.ClientID == "" {
		v.add("%s: type enterprise needs client_id (the gateway's client at the upstream's authorization server, which the ID-JAG names)", where)
	}
	if c.ClientSecretEnv != "" && c.ClientSecretFile != "" {
		v.add("%s: set at most one of client_secret_env and client_secret_file", where)
	}
	switch {
	case c.IdPTokenURL == "":
		v.add("%s: type enterprise needs idp_token_url (the identity provider's token endpoint)", where)
	default:
		if err := checkURL(c.IdPTokenURL); err != nil {
			v.add("%s: idp_token_url: %v", where, err)
		}
	}
	if c.IdPClientID == "" {
		v.add("%s: type enterprise needs idp_client_id (the gateway's client at the identity provider)", where)
	}
	if (c.IdPClientSecretEnv == "") == (c.IdPClientSecretFile == "") {
		v.add("%s: type enterprise needs exactly one of idp_client_secret_env or idp_client_secret_file", where)
	}
	if c.TokenURL != "" {
		if err := checkURL(c.TokenURL); err != nil {
			v.add("%s: token_url: %v", where, err)
		}
	}
	if auth != AuthOAuth {
		v.add("%s: type enterprise needs auth: oauth (users sign in through the enterprise identity provider)", where)
	}
}

// redactURL drops the query and user info of a URL for display.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.String()
}

// validate checks one registration path's admission policy; path is
// cimd, dynamic or pre_registered.
func (p *ClientPath) validate(v *validator, where, path string) {
	switch p.Mode {
	case "", ClientsOpen, ClientsApproval, ClientsClosed:
		if len(p.Allow) > 0 {
			v.add("%s.allow: only used with mode: allowlist (mode is %q)", where, p.Mode)
		}
	case ClientsAllowlist:
		if len(p.Allow) == 0 {
			v.add("%s: mode allowlist needs a non-empty allow list", where)
		}
	default:
		v.add("%s.mode: %q is not supported (want open, allowlist, approval or closed)", where, p.Mode)
	}
	for i, a := range p.Allow {
		if err := checkAllowEntry(a, path); err != nil {
			v.add("%s.allow[%d]: %v", where, i, err)
		}
	}
	if p.GrantTypes != nil && len(p.GrantTypes) == 0 {
		v.add("%s.grant_types: empty (remove the key for the default, or name the grant types)", where)
	}
	for i, g := range NormalizeGrantTypes(p.GrantTypes) {
		switch g {
		case "authorization_code", "refresh_token", "client_credentials", GrantTypeJWTBearer:
		default:
			v.add("%s.grant_types[%d]: %q is not supported (want authorization_code, refresh_token, client_credentials or jwt-bearer)", where, i, p.GrantTypes[i])
		}
	}
}

// checkAllowEntry checks one allow-list entry of a path.
func checkAllowEntry(a, path string) error {
	if a == "" || strings.TrimSpace(a) != a || strings.ContainsAny(a, " \t\r\n") {
		return fmt.Errorf("%q is empty or contains spaces", a)
	}
	if path == "pre_registered" {
		return nil // client ids
	}
	if strings.Contains(a, "://") {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%q is not a URL prefix (scheme://host/path, without query or fragment)", a)
		}
		if path == "cimd" && u.Scheme != "https" {
			return fmt.Errorf("%q: client ID metadata documents are https URLs", a)
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return fmt.Errorf("%q: scheme %q is not http or https", a, u.Scheme)
		}
		return nil
	}
	host := strings.TrimPrefix(a, "*.")
	if strings.HasPrefix(host, "[") {
		if ip := net.ParseIP(strings.Trim(host, "[]")); ip == nil {
			return fmt.Errorf("%q is not a host", a)
		}
		return nil
	}
	if h, port, err := net.SplitHostPort(host); err == nil {
		if _, perr := strconv.Atoi(port); perr != nil {
			return fmt.Errorf("%q: bad port", a)
		}
		host = h
	}
	if strings.ContainsAny(host, "/?#@*:") || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") {
		return fmt.Errorf("%q is not a host, *.domain or URL prefix", a)
	}
	return nil
}
