package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateAuditSigning(t *testing.T) {
	for _, tt := range []struct {
		name string
		a    Audit
		want string
	}{
		{"key file", Audit{SigningKeyFile: "/k", PublicKeyFile: "/p", CheckpointFile: "/c"}, ""},
		{"command with public key", Audit{SigningCommand: []string{"signer"}, PublicKeyFile: "/p"}, ""},
		{"both", Audit{SigningKeyFile: "/k", SigningCommand: []string{"signer"}, PublicKeyFile: "/p"}, "not both"},
		{"command without public key", Audit{SigningCommand: []string{"signer"}}, "needs audit.public_key_file"},
		{"empty program", Audit{SigningCommand: []string{""}, PublicKeyFile: "/p"}, "empty program name"},
		{"negative timeout", Audit{SigningTimeout: -1}, "signing_timeout: negative"},
		{"checkpoint file is the export", Audit{JSONL: "/x", CheckpointFile: "/x"}, "the same file as audit.jsonl"},
		{"sync always", Audit{Sync: "always"}, ""},
		{"sync group with window", Audit{Sync: "group", GroupWindow: 2 * time.Millisecond}, ""},
		{"window, default sync", Audit{GroupWindow: 2 * time.Millisecond}, ""},
		{"unknown sync", Audit{Sync: "never"}, `audit.sync: "never" is not a sync policy`},
		{"negative window", Audit{GroupWindow: -1}, "group_window: negative"},
		{"window without group", Audit{Sync: "os", GroupWindow: time.Millisecond}, "only applies to audit.sync group"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Upstreams: []Upstream{{Name: "x", URL: "https://x/mcp"}}, Audit: &tt.a, DataDir: "/d"}
			c.ApplyDefaults()
			err := c.Validate()
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
}
