package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/go-json-experiment/json/jsontext"
)

// maxArgumentDepth bounds the nesting of tool arguments converted to Cedar
// values. Deeper arguments make the decision fail closed.
const maxArgumentDepth = 64

// argumentsConverter turns JSON tool arguments into a Cedar record and notes
// whether any string in them contains a path-traversal segment.
type argumentsConverter struct {
	needs     *contextNeeds // which top-level members to build; nil: all
	scan      bool          // compute traversal
	traversal bool
	reader    bytes.Reader
	dec       jsontext.Decoder
}

// convertArguments converts a JSON object into a Cedar record. JSON null
// values are left out of records and sets (Cedar has no null); integers that
// fit in 64 bits become Long, other numbers become decimal when exactly
// representable and otherwise a String holding the number's JSON text.
func (c *argumentsConverter) convertArguments(v jsontext.Value) (types.Record, error) {
	c.traversal = false
	c.reader.Reset(v)
	c.dec.Reset(&c.reader)
	dec := &c.dec
	if dec.PeekKind() != '{' {
		if _, err := dec.ReadToken(); err != nil {
			return types.Record{}, fmt.Errorf("arguments: %w", err)
		}
		return types.Record{}, errors.New("arguments: not a JSON object")
	}
	val, _, err := c.value(dec, 0, true)
	if err != nil {
		return types.Record{}, fmt.Errorf("arguments: %w", err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return types.Record{}, errors.New("arguments: trailing data after the object")
	}
	c.reader.Reset(nil)
	return val.(types.Record), nil
}

// value reads one JSON value and, when build is set, returns its Cedar form.
// Top-level members that no candidate policy reads are only checked.
func (c *argumentsConverter) value(dec *jsontext.Decoder, depth int, build bool) (types.Value, bool, error) {
	if depth > maxArgumentDepth {
		return nil, false, fmt.Errorf("nested deeper than %d levels", maxArgumentDepth)
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, false, err
	}
	switch tok.Kind() {
	case 'n':
		return nil, false, nil
	case 't', 'f':
		if !build {
			return nil, false, nil
		}
		return types.Boolean(tok.Bool()), true, nil
	case '"':
		if !build && !c.scan {
			return nil, false, nil
		}
		s := tok.String()
		if c.scan && hasTraversal(s) {
			c.traversal = true
		}
		if !build {
			return nil, false, nil
		}
		return types.String(s), true, nil
	case '0':
		if !build {
			return nil, false, nil
		}
		return number(tok.String()), true, nil
	case '{':
		var m types.RecordMap
		if build {
			m = types.RecordMap{}
		}
		for dec.PeekKind() != '}' {
			name, err := dec.ReadToken()
			if err != nil {
				return nil, false, err
			}
			key := types.String(name.String())
			buildMember := build && (depth > 0 || c.needs == nil || c.needs.argument(key))
			v, ok, err := c.value(dec, depth+1, buildMember)
			if err != nil {
				return nil, false, err
			}
			if ok {
				m[key] = v
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, false, err
		}
		if !build {
			return nil, false, nil
		}
		return types.NewRecord(m), true, nil
	case '[':
		var elems []types.Value
		for dec.PeekKind() != ']' {
			v, ok, err := c.value(dec, depth+1, build)
			if err != nil {
				return nil, false, err
			}
			if ok {
				elems = append(elems, v)
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, false, err
		}
		if !build {
			return nil, false, nil
		}
		return types.NewSet(elems...), true, nil
	}
	return nil, false, fmt.Errorf("unexpected JSON token %v", tok.Kind())
}

func number(raw string) types.Value {
	if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return types.Long(i)
	}
	if !strings.ContainsAny(raw, "eE") {
		if d, err := types.ParseDecimal(raw); err == nil {
			return d
		}
	}
	return types.String(raw)
}

// hasTraversal reports whether s contains a ".." path segment (separated by
// "/" or "\"), including percent-encoded dots and separators, which some
// upstream servers decode before use.
func hasTraversal(s string) bool {
	if !strings.Contains(s, "..") && !strings.Contains(s, "%") {
		return false
	}
	if strings.Contains(s, "%") {
		ls := strings.ToLower(s)
		if strings.Contains(ls, "%2e") || strings.Contains(ls, "%2f") || strings.Contains(ls, "%5c") {
			return true
		}
	}
	for seg := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return true
		}
	}
	return false
}

// CleanPathArgs returns a copy of the JSON object args in which the string
// members named by names are cleaned with [path.Clean] (".." and "." segments
// resolved, repeated slashes collapsed; backslashes are treated as slashes).
// A gateway that calls it before [Engine.Decide] and forwards the cleaned
// arguments upstream makes a policy such as
// `context.arguments.path like "/srv/docs/*"` judge the path the upstream
// will really use. Members that are absent or not strings are left alone.
// Invalid JSON or a non-object is an error.
func CleanPathArgs(args jsontext.Value, names ...string) (jsontext.Value, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(args))
	var out bytes.Buffer
	enc := jsontext.NewEncoder(&out)
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, fmt.Errorf("clean path arguments: %w", err)
	}
	if tok.Kind() != '{' {
		return nil, errors.New("clean path arguments: not a JSON object")
	}
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return nil, err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, fmt.Errorf("clean path arguments: %w", err)
		}
		key := name.String()
		if err := enc.WriteToken(jsontext.String(key)); err != nil {
			return nil, err
		}
		val, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("clean path arguments: %w", err)
		}
		if val.Kind() == '"' && contains(names, key) {
			var t jsontext.Token
			t, err = jsontext.NewDecoder(bytes.NewReader(val)).ReadToken()
			if err != nil {
				return nil, fmt.Errorf("clean path arguments: %w", err)
			}
			p := strings.ReplaceAll(t.String(), `\`, "/")
			if p != "" {
				p = path.Clean(p)
			}
			err = enc.WriteToken(jsontext.String(p))
		} else {
			err = enc.WriteValue(val)
		}
		if err != nil {
			return nil, fmt.Errorf("clean path arguments: %w", err)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("clean path arguments: %w", err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, errors.New("clean path arguments: trailing data after the object")
	}
	if err := enc.WriteToken(jsontext.EndObject); err != nil {
		return nil, err
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
