package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
)

func TestClientConfig(t *testing.T) {
	const u = "https://gw.example.com/mcp"
	for _, host := range []string{"claude", "cursor", "vscode"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"client-config", host, "--url", u, "--name", "work", "--command", "/usr/local/bin/mcpgate"}, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", host, code, errOut.String())
		}
		var doc map[string]map[string]map[string]any
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("%s: snippet is not JSON: %v\n%s", host, err, out.String())
		}
		wrapper := "mcpServers"
		if host == "vscode" {
			wrapper = "servers"
		}
		e := doc[wrapper]["work"]
		if e == nil {
			t.Fatalf("%s: no %s.work entry:\n%s", host, wrapper, out.String())
		}
		switch host {
		case "claude":
			args, _ := e["args"].([]any)
			if e["command"] != "/usr/local/bin/mcpgate" || len(args) != 2 || args[0] != "connect" || args[1] != u {
				t.Errorf("claude entry %v", e)
			}
		case "cursor":
			if e["url"] != u {
				t.Errorf("cursor entry %v", e)
			}
		case "vscode":
			if e["type"] != "http" || e["url"] != u {
				t.Errorf("vscode entry %v", e)
			}
		}
		if errOut.Len() == 0 {
			t.Errorf("%s: no hint on stderr", host)
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"client-config", "claude-code", "--url", u}, &out, &errOut); code != 0 {
		t.Fatalf("claude-code: exit %d: %s", code, errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != "claude mcp add --transport http mcpgate "+u {
		t.Errorf("claude-code: %q", got)
	}
	for _, bad := range [][]string{
		{"client-config", "emacs"},
		{"client-config", "cursor", "--url", "ftp://x/mcp"},
		{"client-config", "cursor", "--name", "a b"},
	} {
		if code := run(context.Background(), bad, &out, &errOut); code == 0 {
			t.Errorf("%v succeeded", bad)
		}
	}
	if got := shellQuote("http://h/mcp?a=b&c"); got != `'http://h/mcp?a=b&c'` {
		t.Errorf("shellQuote: %s", got)
	}
}

func TestConnectHeaders(t *testing.T) {
	h, err := parseHeaders([]string{"Authorization: Bearer abc", "x-team:  blue "})
	if err != nil || h.Get("Authorization") != "Bearer abc" || h.Get("X-Team") != "blue" {
		t.Errorf("parseHeaders: %v %v", h, err)
	}
	for _, bad := range []string{"no colon", ": empty name", "Bad Name: x", "X: a\r\nInjected: y"} {
		if _, err := parseHeaders([]string{bad}); err == nil {
			t.Errorf("parseHeaders(%q) accepted", bad)
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"connect"}, &out, &errOut); code == 0 {
		t.Error("connect without URL succeeded")
	}
}
