package mcp

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// uriTemplate matches URIs against an RFC 6570 URI template, for resource
// templates. It supports simple ({var}), reserved ({+var}), fragment
// ({#var}), path-segment ({/var}), label ({.var}) and query ({?a,b},
// {&a}) expressions, which covers the templates servers publish.
type uriTemplate struct {
	re    *regexp.Regexp
	names []string
}

func parseURITemplate(t string) (*uriTemplate, error) {
	var b strings.Builder
	b.WriteString("^")
	var names []string
	rest := t
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, errors.New("unmatched '}'")
			}
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, errors.New("unmatched '{'")
		}
		expr := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		if expr == "" {
			return nil, errors.New("empty expression")
		}
		op := byte(0)
		if strings.IndexByte("+#./;?&", expr[0]) >= 0 {
			op, expr = expr[0], expr[1:]
		}
		vars := strings.Split(expr, ",")
		for k, v := range vars {
			v = strings.TrimSuffix(v, "*")
			if c := strings.IndexByte(v, ':'); c >= 0 {
				v = v[:c]
			}
			if v == "" || !validVarName(v) {
				return nil, fmt.Errorf("invalid variable name %q", v)
			}
			names = append(names, v)
			switch op {
			case 0:
				if k > 0 {
					b.WriteString(",")
				}
				b.WriteString("([^/?#,]*)")
			case '+':
				if k > 0 {
					b.WriteString(",")
				}
				b.WriteString("(.*?)")
			case '#':
				if k == 0 {
					b.WriteString("#")
				} else {
					b.WriteString(",")
				}
				b.WriteString("(.*?)")
			case '.', '/', ';':
				b.WriteString(regexp.QuoteMeta(string(op)))
				if op == ';' {
					b.WriteString(regexp.QuoteMeta(v) + "=?")
				}
				b.WriteString("([^/?#.;]*)")
			case '?', '&':
				sep := "&"
				if k == 0 && op == '?' {
					sep = `\?`
				}
				b.WriteString("(?:" + sep + regexp.QuoteMeta(v) + "=([^&#]*))?")
			}
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, err
	}
	return &uriTemplate{re: re, names: names}, nil
}

func validVarName(v string) bool {
	for _, r := range v {
		if !(r == '_' || r == '.' || r == '%' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// match reports whether uri matches, with the decoded variable values.
func (t *uriTemplate) match(uri string) (map[string]string, bool) {
	m := t.re.FindStringSubmatch(uri)
	if m == nil {
		return nil, false
	}
	vars := make(map[string]string, len(t.names))
	for i, n := range t.names {
		v, err := url.PathUnescape(m[i+1])
		if err != nil {
			v = m[i+1]
		}
		vars[n] = v
	}
	return vars, true
}

// MatchURITemplate reports whether uri matches the RFC 6570 URI template,
// and the values of its variables. An invalid template is an error.
func MatchURITemplate(template, uri string) (map[string]string, bool, error) {
	t, err := parseURITemplate(template)
	if err != nil {
		return nil, false, err
	}
	vars, ok := t.match(uri)
	return vars, ok, nil
}
