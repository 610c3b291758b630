package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
)

// bindingDomain separates binding digests from every other SHA-256 the
// gateway computes, and versions the encoding.
const bindingDomain = "mcpgate approval binding v1"

// Binding returns the value an approval is bound to: the hex SHA-256 of
// the canonical JSON array
//
//	["mcpgate approval binding v1", principal, tool, arguments, policyVersion]
//
// with arguments in their RFC 8785 canonical form (absent arguments, nil
// or empty, encode as null). Arguments that differ only in member order,
// whitespace, string escaping or number spelling (1.0 and 1, 1e2 and 100)
// give the same binding; any other change gives a different one.
//
// To keep that promise Binding is stricter than RFC 8785: it refuses
// arguments holding a number that an IEEE 754 double cannot represent
// exactly (an integer beyond ±2⁵³ that is not a double, more than 17
// significant digits, or out of range), since RFC 8785 would round it and
// two different calls would then share one binding. It also refuses
// invalid JSON, duplicate member names, invalid UTF-8 and empty
// principal, tool or policy version.
//
// tool must name the tool unambiguously across upstreams (the gateway's
// namespaced name).
func Binding(principal, tool string, args jsontext.Value, policyVersion string) (string, error) {
	switch {
	case principal == "":
		return "", errors.New("approval binding: empty principal")
	case tool == "":
		return "", errors.New("approval binding: empty tool")
	case policyVersion == "":
		return "", errors.New("approval binding: empty policy version")
	}
	buf := make([]byte, 0, 128+len(args))
	buf = append(buf, '[')
	buf = appendString(buf, bindingDomain)
	var err error
	buf = append(buf, ',')
	if buf, err = appendJSONString(buf, "principal", principal); err != nil {
		return "", fmt.Errorf("approval binding: %w", err)
	}
	buf = append(buf, ',')
	if buf, err = appendJSONString(buf, "tool", tool); err != nil {
		return "", fmt.Errorf("approval binding: %w", err)
	}
	buf = append(buf, ',')
	if len(args) == 0 {
		buf = append(buf, "null"...)
	} else {
		canon, err := canonicalJSON(args, true)
		if err != nil {
			return "", fmt.Errorf("approval binding: arguments: %w", err)
		}
		buf = append(buf, canon...)
	}
	buf = append(buf, ',')
	if buf, err = appendJSONString(buf, "policy version", policyVersion); err != nil {
		return "", fmt.Errorf("approval binding: %w", err)
	}
	buf = append(buf, ']')
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), nil
}
