//go:build unix

package main

import "syscall"

// signalReload sends SIGHUP to the gateway process pid.
func signalReload(pid int) error { return syscall.Kill(pid, syscall.SIGHUP) }
