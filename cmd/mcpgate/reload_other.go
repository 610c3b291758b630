//go:build !unix

package main

import "errors"

// signalReload is not available without Unix signals.
func signalReload(pid int) error {
	return errors.New("mcpgate reload needs Unix signals; restart the gateway to apply a new configuration")
}
