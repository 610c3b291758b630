package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestSetGCPercent: serve sets the collector's target to defaultGCPercent
// when GOGC is not set, and leaves the environment's value otherwise.
func TestSetGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })

	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150) // as the runtime would have read it
	if got := setGCPercent(); got != 150 {
		t.Errorf("with GOGC=150: target %d", got)
	}
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("with GOGC=150: runtime target %d", got)
	}

	t.Setenv("GOGC", "") // set but empty: still the environment's choice
	if got := setGCPercent(); got != 150 {
		t.Errorf("with GOGC empty: target %d, want the runtime's 150", got)
	}

	os.Unsetenv("GOGC") // restored by t.Setenv's cleanup
	if got := setGCPercent(); got != defaultGCPercent {
		t.Errorf("without GOGC: target %d, want %d", got, defaultGCPercent)
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("without GOGC: runtime target %d, want %d", got, defaultGCPercent)
	}
}
