package gateway

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
)

// The gateway relays params and results as raw JSON, editing only the
// members it must (a tool's name, a progress token, a task id), so that
// fields it does not know pass through unchanged.

// member returns the raw value of an object's member, or nil.
func member(obj jsontext.Value, name string) (jsontext.Value, error) {
	if len(obj) == 0 {
		return nil, nil
	}
	d := jsontext.NewDecoder(bytes.NewReader(obj))
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("expected a JSON object, got %s", tok.Kind())
	}
	for d.PeekKind() != '}' {
		n, err := d.ReadToken()
		if err != nil {
			return nil, err
		}
		if n.String() == name {
			v, err := d.ReadValue()
			if err != nil {
				return nil, err
			}
			return bytes.Clone(v), nil
		}
		if err := d.SkipValue(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// stringMember returns the string value of an object's member ("" if
// absent or not a string).
func stringMember(obj jsontext.Value, name string) (string, error) {
	v, err := member(obj, name)
	if err != nil || v == nil || v.Kind() != '"' {
		return "", err
	}
	s, err := jsontext.AppendUnquote(nil, v)
	return string(s), err
}

// setMembers returns obj with the given members set (replaced in place,
// or appended when absent); a nil value removes the member. A nil or empty
// obj counts as {}.
func setMembers(obj jsontext.Value, kv ...any) (jsontext.Value, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("setMembers: odd argument count")
	}
	type pair struct {
		name  string
		value jsontext.Value
		done  bool
	}
	pairs := make([]pair, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		var v jsontext.Value
		switch x := kv[i+1].(type) {
		case jsontext.Value:
			v = x
		case nil:
		case string:
			q, err := jsontext.AppendQuote(nil, x)
			if err != nil {
				return nil, err
			}
			v = q
		default:
			return nil, fmt.Errorf("setMembers: unsupported value type %T", x)
		}
		pairs = append(pairs, pair{name: kv[i].(string), value: v})
	}
	if len(obj) == 0 {
		obj = jsontext.Value("{}")
	}
	d := jsontext.NewDecoder(bytes.NewReader(obj))
	out := make([]byte, 0, len(obj)+32)
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("expected a JSON object, got %s", tok.Kind())
	}
	out = append(out, '{')
	first := true
	emit := func(name []byte, v []byte) {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, name...)
		out = append(out, ':')
		out = append(out, v...)
	}
	for d.PeekKind() != '}' {
		rawName, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		name := bytes.Clone(rawName)
		v, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		var unq []byte
		unq, err = jsontext.AppendUnquote(nil, name)
		if err != nil {
			return nil, err
		}
		replaced := false
		for i := range pairs {
			if pairs[i].name == string(unq) {
				pairs[i].done = true
				replaced = true
				if pairs[i].value != nil {
					emit(name, pairs[i].value)
				}
				break
			}
		}
		if !replaced {
			emit(name, v)
		}
	}
	for _, p := range pairs {
		if p.done || p.value == nil {
			continue
		}
		q, err := jsontext.AppendQuote(nil, p.name)
		if err != nil {
			return nil, err
		}
		emit(q, p.value)
	}
	out = append(out, '}')
	return out, nil
}

// arrayElements splits a raw JSON array into its elements.
func arrayElements(arr jsontext.Value) ([]jsontext.Value, error) {
	if len(arr) == 0 || arr.Kind() == 'n' {
		return nil, nil
	}
	d := jsontext.NewDecoder(bytes.NewReader(arr))
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '[' {
		return nil, fmt.Errorf("expected a JSON array, got %s", tok.Kind())
	}
	var out []jsontext.Value
	for d.PeekKind() != ']' {
		v, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		out = append(out, bytes.Clone(v))
	}
	return out, nil
}

// joinArray builds a raw JSON array from elements.
func joinArray(elems []jsontext.Value) jsontext.Value {
	n := 2
	for _, e := range elems {
		n += len(e) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, e := range elems {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return append(out, ']')
}
