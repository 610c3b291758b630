package gateway

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsMethodTables checks that docs/gateway.md lists every method of
// every admission table with the rule the code gives it, and nothing
// else.
func TestDocsMethodTables(t *testing.T) {
	doc, err := os.ReadFile("../docs/gateway.md")
	if err != nil {
		t.Skipf("docs not found: %v", err)
	}
	sections := strings.Split(string(doc), "\n\n")
	// The four tables, in the order of the document.
	tables := []map[string]*methodSpec{clientRequests, clientNotifications, upstreamRequests, upstreamNotifications}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| (governed|local|refused) \\|")
	var found []map[string]string
	for _, s := range sections {
		m := row.FindAllStringSubmatch(s, -1)
		if len(m) == 0 {
			continue
		}
		rows := map[string]string{}
		for _, r := range m {
			rows[r[1]] = r[2]
		}
		found = append(found, rows)
	}
	if len(found) != len(tables) {
		t.Fatalf("docs/gateway.md has %d method tables, want %d", len(found), len(tables))
	}
	for i, tb := range tables {
		for m, spec := range tb {
			if got, ok := found[i][m]; !ok {
				t.Errorf("table %d: %s is not documented", i+1, m)
			} else if got != spec.rule.String() {
				t.Errorf("table %d: %s documented as %s, is %s", i+1, m, got, spec.rule)
			}
		}
		for m := range found[i] {
			if tb[m] == nil {
				t.Errorf("table %d: documents %s, which the code does not have", i+1, m)
			}
		}
	}
}
