package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// maxFileSize bounds the configuration files read by Load and
// LoadServersJSON.
const maxFileSize = 4 << 20

// Load reads the YAML configuration file at path. Decoding is strict:
// unknown keys, duplicate keys and values of the wrong type are errors, and
// the error names the file, line and column. Relative paths in the file
// (data_dir, cwd, value_file, client_secret_file) are resolved against the
// file's directory. Load neither applies defaults nor validates; see
// ApplyDefaults and Validate.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parseYAML(path, data)
	if err != nil {
		return nil, err
	}
	c.resolvePaths(filepath.Dir(path))
	return c, nil
}

// readFile reads a configuration file, refusing files larger than
// maxFileSize.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	if n > maxFileSize {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, maxFileSize)
	}
	return buf.Bytes(), nil
}

// parseYAML decodes one YAML document into a Config. name is used in error
// messages.
func parseYAML(name string, data []byte) (_ *Config, err error) {
	// go-yaml has panicked on some malformed input (found by FuzzLoad,
	// e.g. a tag with no value in a sequence); report that as an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: malformed YAML (the decoder failed: %v)", name, r)
		}
	}()
	var c Config
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(name, err)
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	switch len(docs) {
	case 0:
		return &c, nil
	case 1:
	default:
		return nil, posError(name, docs[1].Body.GetToken(), "more than one YAML document; the configuration must be a single document")
	}
	body := docs[0].Body
	if err := precheck(name, body); err != nil {
		return nil, err
	}
	if err := yaml.NodeToValue(body, &c, yaml.Strict()); err != nil {
		return nil, yamlError(name, err)
	}
	return &c, nil
}

// precheck finds mistakes the decoder would report without a position or
// with an unhelpful message: durations without a unit or with a bad one, and
// a command written as a string instead of a list.
func precheck(name string, body ast.Node) error {
	top, ok := unwrap(body).(*ast.MappingNode)
	if !ok {
		return nil // the decoder reports the wrong type
	}
	ups, ok := unwrap(mapValue(top, "upstreams")).(*ast.SequenceNode)
	if !ok {
		return nil
	}
	for _, item := range ups.Values {
		m, ok := unwrap(item).(*ast.MappingNode)
		if !ok {
			continue
		}
		if v := unwrap(mapValue(m, "timeout")); v != nil {
			switch n := v.(type) {
			case *ast.StringNode:
				if _, err := time.ParseDuration(n.Value); err != nil {
					return posError(name, n.GetToken(), fmt.Sprintf("timeout: %q is not a duration (examples: 30s, 5m, 1h30m)", n.Value))
				}
			case *ast.IntegerNode, *ast.FloatNode:
				return posError(name, n.GetToken(), fmt.Sprintf("timeout: %s needs a unit (examples: 30s, 5m, 1h30m)", n.GetToken().Value))
			}
		}
		if v := unwrap(mapValue(m, "command")); v != nil {
			if _, ok := v.(*ast.StringNode); ok {
				return posError(name, v.GetToken(), "command must be a list: the program and its arguments, e.g. [npx, -y, some-server]")
			}
		}
	}
	return nil
}

// unwrap returns the node under anchors and tags.
func unwrap(n ast.Node) ast.Node {
	for i := 0; i < 64 && n != nil; i++ {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
	return n
}

// mapValue returns the value of key in m, or nil.
func mapValue(m *ast.MappingNode, key string) ast.Node {
	for _, mv := range m.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		if k, ok := unwrap(mv.Key).(*ast.StringNode); ok && k.Value == key {
			return mv.Value
		}
	}
	return nil
}

// yamlError turns a go-yaml error into "file:line:column: message".
func yamlError(name string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg := ye.GetMessage()
		var te *yaml.TypeError
		if errors.As(err, &te) && te.DstType != nil {
			msg = "expected " + describeType(te.DstType)
			if te.SrcType != nil {
				msg += ", got " + describeType(te.SrcType)
			}
		}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return &PositionError{File: name, Line: tk.Position.Line, Column: tk.Position.Column, Msg: msg, Err: err}
		}
		return fmt.Errorf("%s: %s", name, msg)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// describeType names a Go type in YAML terms for error messages.
func describeType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "a duration such as 30s"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.Interface:
		return "a value"
	}
	return t.String()
}

func posError(name string, tk *token.Token, msg string) error {
	if tk == nil || tk.Position == nil {
		return fmt.Errorf("%s: %s", name, msg)
	}
	return &PositionError{File: name, Line: tk.Position.Line, Column: tk.Position.Column, Msg: msg}
}

// PositionError is a problem at a known place in a configuration file.
type PositionError struct {
	// File is the file name as given.
	File string
	// Line and Column are 1-based.
	Line, Column int
	// Msg describes the problem.
	Msg string
	// Err is the underlying decoder error, if any.
	Err error
}

// Error returns "file:line:column: message".
func (e *PositionError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Unwrap returns the underlying decoder error.
func (e *PositionError) Unwrap() error { return e.Err }

// resolvePaths makes the relative paths of c absolute against dir.
func (c *Config) resolvePaths(dir string) {
	c.DataDir = resolvePath(dir, c.DataDir)
	if c.Policy != nil {
		for i, p := range c.Policy.Paths {
			c.Policy.Paths[i] = resolvePath(dir, p)
		}
		c.Policy.Limits = resolvePath(dir, c.Policy.Limits)
	}
	if c.Audit != nil {
		c.Audit.JSONL = resolvePath(dir, c.Audit.JSONL)
		c.Audit.SigningKeyFile = resolvePath(dir, c.Audit.SigningKeyFile)
		c.Audit.PublicKeyFile = resolvePath(dir, c.Audit.PublicKeyFile)
		c.Audit.CheckpointFile = resolvePath(dir, c.Audit.CheckpointFile)
	}
	if c.OAuth != nil && c.OAuth.OIDC != nil {
		c.OAuth.OIDC.ClientSecretFile = resolvePath(dir, c.OAuth.OIDC.ClientSecretFile)
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		u.Cwd = resolvePath(dir, u.Cwd)
		if cr := u.Credentials; cr != nil {
			cr.ValueFile = resolvePath(dir, cr.ValueFile)
			cr.ClientSecretFile = resolvePath(dir, cr.ClientSecretFile)
			cr.IdPClientSecretFile = resolvePath(dir, cr.IdPClientSecretFile)
		}
	}
}

// resolvePath returns p made absolute against dir; empty and absolute paths
// are returned as they are, and "~/" is expanded to the home directory.
func resolvePath(dir, p string) string {
	if p == "" {
		return p
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
		return p
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	if abs, err := filepath.Abs(filepath.Join(dir, p)); err == nil {
		return abs
	}
	return filepath.Join(dir, p)
}
