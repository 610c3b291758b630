package authserver

import "testing"

// TestFamilyIDNotAFlag: grant ids never start with '-' (one base64url id
// in 64 would), so `mcpgate revoke grant ID` never reads one as a flag.
func TestFamilyIDNotAFlag(t *testing.T) {
	for range 5000 {
		if id := newFamilyID(); id == "" || id[0] == '-' || len(id) != 22 {
			t.Fatalf("grant id %q", id)
		}
	}
}
