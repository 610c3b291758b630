package config

import (
	"strings"
	"testing"
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
