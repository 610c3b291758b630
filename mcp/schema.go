package mcp

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// englishPrinter renders validation messages. A message.Printer is safe for
// concurrent use once made.
var englishPrinter = message.NewPrinter(language.English)

// schemaValidator validates JSON values against a compiled JSON Schema
// (draft 2020-12 unless the schema says otherwise).
type schemaValidator struct {
	schema *jsonschema.Schema
	// objectOnly is set for schemas that only require an object, so the
	// common case skips a second decoding of the arguments.
	objectOnly bool
}

// noRemoteLoader refuses to load any schema by URL: a tool's schema must be
// self-contained, and fetching a network $ref on someone's behalf is a
// server-side request forgery waiting to happen.
type noRemoteLoader struct{}

func (noRemoteLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("refusing to load external schema %q: schemas must be self-contained", url)
}

// compileSchema compiles a JSON Schema given as raw JSON.
func compileSchema(raw jsontext.Value) (*schemaValidator, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema is not valid JSON: %w", err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("schema must be a JSON object")
	}
	v := &schemaValidator{objectOnly: isObjectOnly(m)}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noRemoteLoader{})
	const loc = "urn:mcpgate:schema"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	if v.schema, err = c.Compile(loc); err != nil {
		return nil, err
	}
	return v, nil
}

func isObjectOnly(m map[string]any) bool {
	for k, val := range m {
		switch k {
		case "type":
			if val != "object" {
				return false
			}
		case "$schema", "title", "description":
		case "properties":
			if p, ok := val.(map[string]any); !ok || len(p) > 0 {
				return false
			}
		default:
			return false
		}
	}
	return m["type"] == "object"
}

// validateArgs validates tool arguments: absent arguments count as {}.
func (v *schemaValidator) validateArgs(args jsontext.Value) error {
	if len(args) == 0 {
		args = jsontext.Value("{}")
	}
	if args.Kind() != '{' {
		return errors.New("arguments must be a JSON object")
	}
	if v.objectOnly {
		return nil
	}
	return v.validateValue(args)
}

// validateValue validates one JSON value.
func (v *schemaValidator) validateValue(val jsontext.Value) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(val))
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if err := v.schema.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return errors.New(flattenValidationError(ve))
		}
		return err
	}
	return nil
}

// flattenValidationError renders the innermost causes of a validation error
// on one line.
func flattenValidationError(ve *jsonschema.ValidationError) string {
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/"
			if len(e.InstanceLocation) > 0 {
				loc = ""
				for _, p := range e.InstanceLocation {
					loc += "/" + p
				}
			}
			leaves = append(leaves, fmt.Sprintf("at %s: %s", loc, e.ErrorKind.LocalizedString(englishPrinter)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	out := ""
	for i, l := range leaves {
		if i > 0 {
			out += "; "
		}
		out += l
	}
	return out
}
