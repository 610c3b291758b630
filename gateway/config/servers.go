package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// LoadServersJSON reads the MCP server list of another MCP client, so that
// people can bring the file they already have:
//
//   - Claude Desktop, Claude Code, Cursor, Windsurf, Cline:
//     {"mcpServers": {"name": {"command": "npx", "args": [...], "env": {...}}}}
//     or {"mcpServers": {"name": {"url": "https://...", "headers": {...}}}}
//   - VS Code (.vscode/mcp.json):
//     {"servers": {"name": {"type": "stdio"|"http"|"sse", "command": ..., "url": ...}}}
//
// Comments and trailing commas (JSONC, as VS Code writes) are accepted.
// Other top-level members (VS Code's "inputs", other application settings)
// are ignored; unknown members of a server entry are errors. Entries with
// "disabled": true are skipped.
//
// The variables ${env:NAME}, ${NAME}, ${NAME:-default}, ${userHome},
// ${workspaceFolder}, ${workspaceFolderBasename}, ${pathSeparator} and ${/}
// are substituted in command, args, env, cwd, url and headers; an unset
// environment variable without a default is an error. ${workspaceFolder}
// is the directory containing the file, or its parent when that directory
// is .vscode or .cursor; a relative cwd is resolved against it.
//
// An Authorization header becomes the upstream's credentials (type bearer
// for "Bearer <token>", type header otherwise); other headers are kept in
// Upstream.Headers. These files often hold literal secrets: the values are
// kept in fields that are never marshaled or logged, and error messages
// never repeat them.
func LoadServersJSON(path string) ([]Upstream, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	home, _ := os.UserHomeDir()
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	dir := filepath.Dir(abs)
	if b := filepath.Base(dir); b == ".vscode" || b == ".cursor" {
		dir = filepath.Dir(dir)
	}
	x := &expander{lookupEnv: os.LookupEnv, home: home, workspace: dir}
	return parseServers(path, data, x)
}

// serverEntry is one server of a servers file, in the union of the formats.
type serverEntry struct {
	Type          string                    `json:"type"`
	TransportType string                    `json:"transportType"` // Cline
	Command       string                    `json:"command"`
	Args          []string                  `json:"args"`
	Env           map[string]jsontext.Value `json:"env"`
	Cwd           string                    `json:"cwd"`
	URL           string                    `json:"url"`
	ServerURL     string                    `json:"serverUrl"` // Windsurf
	Headers       map[string]string         `json:"headers"`
	EnvFile       *string                   `json:"envFile"`
	Disabled      bool                      `json:"disabled"`
	Timeout       jsontext.Value            `json:"timeout"`

	// Client-specific settings that mean nothing to a gateway.
	AutoApprove   jsontext.Value `json:"autoApprove"`
	AlwaysAllow   jsontext.Value `json:"alwaysAllow"`
	DisabledTools jsontext.Value `json:"disabledTools"`
	Description   jsontext.Value `json:"description"`
	Dev           jsontext.Value `json:"dev"`
	Gallery       jsontext.Value `json:"gallery"`
	Version       jsontext.Value `json:"version"`
}

// serverEntryMembers lists the members a server entry may have, for error
// messages.
const serverEntryMembers = "type, command, args, env, cwd, url, headers, disabled, timeout"

// parseServers decodes a servers file. name is used in error messages.
func parseServers(name string, data []byte, x *expander) ([]Upstream, error) {
	data = stripJSONC(data)
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, jsonError(name, data, 0, "", err)
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("%s: expected a JSON object with mcpServers or servers, got %s", name, kindName(tok.Kind()))
	}
	var ups []Upstream
	var errs []error
	found := false
	seen := make(map[string]bool)
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, jsonError(name, data, 0, "", err)
		}
		key := tok.String()
		if key != "mcpServers" && key != "servers" {
			if err := dec.SkipValue(); err != nil {
				return nil, jsonError(name, data, 0, "", err)
			}
			continue
		}
		found = true
		if dec.PeekKind() != '{' {
			off := valueStart(data, dec.InputOffset())
			_ = dec.SkipValue()
			return nil, jsonError(name, data, 0, "", &jsontext.SyntacticError{ByteOffset: off, Err: fmt.Errorf("%s must be an object mapping server names to servers", key)})
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, jsonError(name, data, 0, "", err)
		}
		for dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, jsonError(name, data, 0, "", err)
			}
			server := tok.String()
			base := valueStart(data, dec.InputOffset())
			raw, err := dec.ReadValue()
			if err != nil {
				return nil, jsonError(name, data, 0, "", err)
			}
			if seen[server] {
				errs = append(errs, fmt.Errorf("%s: server %q is defined twice", name, server))
				continue
			}
			seen[server] = true
			var e serverEntry
			if err := json.Unmarshal(raw, &e, json.RejectUnknownMembers(true)); err != nil {
				errs = append(errs, jsonError(name, data, base, fmt.Sprintf("server %q: ", server), err))
				continue
			}
			if e.Disabled {
				continue
			}
			u, uerrs := e.upstream(server, x)
			for _, err := range uerrs {
				errs = append(errs, fmt.Errorf("%s: server %q: %w", name, server, err))
			}
			if len(uerrs) == 0 {
				ups = append(ups, u)
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, jsonError(name, data, 0, "", err)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, jsonError(name, data, 0, "", err)
	}
	if _, err := dec.ReadToken(); err == nil {
		return nil, fmt.Errorf("%s: unexpected data after the JSON object", name)
	}
	if !found {
		return nil, fmt.Errorf("%s: no \"mcpServers\" or \"servers\" object found", name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ups, nil
}

// upstream converts a server entry to an Upstream, substituting variables.
func (e *serverEntry) upstream(name string, x *expander) (Upstream, []error) {
	u := Upstream{Name: name}
	var errs []error
	exp := func(what, s string) string {
		v, err := x.expand(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
		return v
	}
	if e.EnvFile != nil {
		errs = append(errs, errors.New("envFile is not supported; put the variables in env (values may use ${env:NAME})"))
	}
	typ := e.Type
	if typ == "" {
		typ = e.TransportType
	}
	url := e.URL
	if url == "" {
		url = e.ServerURL
	} else if e.ServerURL != "" {
		errs = append(errs, errors.New("set url or serverUrl, not both"))
	}
	switch typ {
	case "", "stdio":
	case "http", "streamable-http", "streamableHttp", "streamable_http", "streamable":
		u.Transport = TransportStreamable
	case "sse":
		u.Transport = TransportSSE
	default:
		errs = append(errs, fmt.Errorf("type %q is not supported (want stdio, http or sse)", typ))
	}
	if typ == "stdio" && url != "" {
		errs = append(errs, errors.New("type stdio needs command, not url"))
	}
	if u.Transport != "" && e.Command != "" {
		errs = append(errs, fmt.Errorf("type %s needs url, not command", typ))
	}
	if e.Command != "" {
		u.Command = append(u.Command, exp("command", e.Command))
		for i, a := range e.Args {
			u.Command = append(u.Command, exp(fmt.Sprintf("args[%d]", i), a))
		}
	} else if len(e.Args) > 0 {
		errs = append(errs, errors.New("args without command"))
	}
	if url != "" {
		u.URL = exp("url", url)
	}
	if e.Cwd != "" {
		u.Cwd = resolvePath(x.workspace, exp("cwd", e.Cwd))
	}
	for _, k := range sortedKeys2(e.Env) {
		raw := e.Env[k]
		var s string
		switch raw.Kind() {
		case '"':
			if err := json.Unmarshal(raw, &s); err != nil {
				errs = append(errs, fmt.Errorf("env %s: invalid string", k))
				continue
			}
		case '0', 't', 'f':
			s = string(raw)
		default:
			errs = append(errs, fmt.Errorf("env %s: expected a string, got %s", k, kindName(raw.Kind())))
			continue
		}
		if u.Env == nil {
			u.Env = make(map[string]string)
		}
		u.Env[k] = exp("env "+k, s)
	}
	for _, k := range sortedKeys(e.Headers) {
		v := exp("headers "+k, e.Headers[k])
		if strings.EqualFold(k, "Authorization") {
			if len(v) > len("Bearer ") && strings.EqualFold(v[:len("Bearer ")], "Bearer ") {
				u.Credentials = &Credentials{Type: CredentialsBearer, Value: strings.TrimSpace(v[len("Bearer "):])}
			} else {
				u.Credentials = &Credentials{Type: CredentialsHeader, Header: k, Value: v}
			}
			continue
		}
		if u.Headers == nil {
			u.Headers = make(map[string]string)
		}
		u.Headers[k] = v
	}
	if len(e.Timeout) > 0 {
		switch e.Timeout.Kind() {
		case '0':
			secs, err := strconv.ParseFloat(string(e.Timeout), 64)
			if err != nil || secs < 0 || secs > 1e9 {
				errs = append(errs, errors.New("timeout: want a number of seconds or a duration such as \"30s\""))
			} else {
				u.Timeout = time.Duration(secs * float64(time.Second))
			}
		case '"':
			var s string
			_ = json.Unmarshal(e.Timeout, &s)
			d, err := time.ParseDuration(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("timeout: %q is not a duration (examples: 30s, 5m)", s))
			}
			u.Timeout = d
		default:
			errs = append(errs, errors.New("timeout: want a number of seconds or a duration such as \"30s\""))
		}
	}
	return u, errs
}

func sortedKeys2(m map[string]jsontext.Value) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// expander substitutes the variables of servers files.
type expander struct {
	lookupEnv func(string) (string, bool)
	home      string
	workspace string
}

// expand substitutes the ${...} variables of s. A "$" not followed by "{"
// is kept. Errors name the variable, never its value.
func (x *expander) expand(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", errors.New("unterminated ${ (missing })")
		}
		expr := s[i+2 : i+2+end]
		s = s[i+2+end+1:]
		v, err := x.variable(expr)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
}

func (x *expander) variable(expr string) (string, error) {
	switch expr {
	case "userHome":
		if x.home == "" {
			return "", errors.New("${userHome}: no home directory")
		}
		return x.home, nil
	case "workspaceFolder":
		return x.workspace, nil
	case "workspaceFolderBasename":
		return filepath.Base(x.workspace), nil
	case "pathSeparator", "/":
		return string(os.PathSeparator), nil
	}
	if name, ok := strings.CutPrefix(expr, "env:"); ok {
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: %q is not a valid environment variable name", truncate(expr), truncate(name))
		}
		v, ok := x.lookupEnv(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	}
	if strings.HasPrefix(expr, "input:") {
		return "", fmt.Errorf("${%s}: input variables need an interactive prompt; use ${env:NAME} instead", truncate(expr))
	}
	name, def, hasDef := strings.Cut(expr, ":-")
	if !validEnvName(name) {
		return "", fmt.Errorf("${%s} is not a supported variable (use ${env:NAME}, ${NAME}, ${NAME:-default}, ${userHome} or ${workspaceFolder})", truncate(expr))
	}
	if v, ok := x.lookupEnv(name); ok && (v != "" || !hasDef) {
		return v, nil
	}
	if hasDef {
		return def, nil
	}
	return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// valueStart returns the offset of the value after a member name that ends
// at off (skipping whitespace and the colon).
func valueStart(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// jsonError describes a JSON error as "file:line:column: message". base is
// the offset of the value the error's offsets are relative to. The message
// never includes the offending value (it may be a secret).
func jsonError(name string, data []byte, base int64, prefix string, err error) error {
	var off int64 = -1
	var msg string
	var se *json.SemanticError
	var sx *jsontext.SyntacticError
	switch {
	case errors.As(err, &se):
		off = base + se.ByteOffset
		ptr := string(se.JSONPointer)
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			msg = fmt.Sprintf("unknown member %q (supported: %s)", lastToken(ptr), serverEntryMembers)
		case se.JSONKind != 0 && se.GoType != nil:
			msg = fmt.Sprintf("expected %s, got %s", describeJSONType(se.GoType), kindName(se.JSONKind))
			if ptr != "" {
				msg = displayPointer(ptr) + ": " + msg
			}
		default:
			msg = fmt.Sprintf("%s: invalid value", displayPointer(ptr))
		}
	case errors.As(err, &sx):
		off = base + sx.ByteOffset
		msg = "invalid JSON"
		if sx.Err != nil {
			msg += ": " + sx.Err.Error()
		}
	case errors.Is(err, io.EOF):
		off = int64(len(data))
		msg = "unexpected end of file"
	default:
		return fmt.Errorf("%s: %s%w", name, prefix, err)
	}
	msg = prefix + msg
	if off < 0 || off > int64(len(data)) {
		return fmt.Errorf("%s: %s", name, msg)
	}
	line, col := lineCol(data, off)
	return &PositionError{File: name, Line: line, Column: col, Msg: msg, Err: err}
}

// describeJSONType names a Go type in JSON terms for error messages.
func describeJSONType(t reflect.Type) string {
	switch d := describeType(t); d {
	case "a mapping":
		return "an object"
	case "a list":
		return "an array"
	default:
		return d
	}
}

func lastToken(ptr string) string {
	if i := strings.LastIndexByte(ptr, '/'); i >= 0 {
		ptr = ptr[i+1:]
	}
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(ptr)
}

func displayPointer(ptr string) string {
	if ptr == "" {
		return "value"
	}
	return strings.TrimPrefix(strings.ReplaceAll(ptr, "/", "."), ".")
}

func lineCol(data []byte, off int64) (int, int) {
	pre := data[:off]
	line := bytes.Count(pre, []byte{'\n'}) + 1
	col := int(off) - (bytes.LastIndexByte(pre, '\n') + 1) + 1
	return line, col
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "nothing"
}

// stripJSONC blanks out // and /* */ comments and trailing commas in JSONC
// text, keeping every other byte (and every newline) in place so that
// offsets still point at the same line and column.
func stripJSONC(data []byte) []byte {
	if !bytes.Contains(data, []byte("/")) && !bytes.Contains(data, []byte(",")) {
		return data
	}
	out := bytes.Clone(data)
	blank := func(i int) {
		if out[i] != '\n' && out[i] != '\r' {
			out[i] = ' '
		}
	}
	inString := false
	lastComma := -1
	for i := 0; i < len(out); i++ {
		c := out[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
			lastComma = -1
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				blank(i)
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			j := bytes.Index(out[i+2:], []byte("*/"))
			end := len(out)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			for ; i < end; i++ {
				blank(i)
			}
			i--
		case c == ',':
			lastComma = i
		case c == '}' || c == ']':
			if lastComma >= 0 {
				out[lastComma] = ' '
			}
			lastComma = -1
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			lastComma = -1
		}
	}
	return out
}
