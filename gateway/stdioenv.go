package gateway

import (
	"slices"
	"strings"
)

// inheritedEnv returns the names of the gateway's environment variables
// that every stdio upstream inherits on goos: what a program needs to find
// other programs (PATH), its home and user, its locale, time zone and
// terminal, and a temporary directory, plus what Windows programs need to
// run at all. Nothing else: the gateway's environment holds secrets (the
// credentials of other upstreams, read through value_env and
// client_secret_env), and a local server gets only what its upstream
// entry grants it with env and pass_env.
func inheritedEnv(goos string) []string {
	names := []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"}
	if goos == "windows" {
		names = append(names,
			"SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "TEMP", "TMP",
			"USERNAME", "USERPROFILE", "HOMEDRIVE", "HOMEPATH", "APPDATA", "LOCALAPPDATA", "PROGRAMDATA",
			"PROGRAMFILES", "PROGRAMFILES(X86)", "COMMONPROGRAMFILES", "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE", "OS")
	}
	return names
}

// stdioEnv builds the environment of a stdio upstream's process from the
// gateway's environment (environ, as os.Environ gives it): the variables
// named by inheritedEnv(goos) and by pass (the upstream's pass_env) that
// are set, then the upstream's configured env, which wins over both.
// Variable names compare case-insensitively on Windows, as Windows does.
// The result is sorted, with each name once.
func stdioEnv(environ []string, goos string, env map[string]string, pass []string) []string {
	fold := goos == "windows"
	key := func(name string) string {
		if fold {
			return strings.ToUpper(name)
		}
		return name
	}
	allowed := make(map[string]bool)
	for _, n := range inheritedEnv(goos) {
		allowed[key(n)] = true
	}
	for _, n := range pass {
		allowed[key(n)] = true
	}
	vars := make(map[string]string) // key → "NAME=value"
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if ok && name != "" && allowed[key(name)] {
			// (Windows keeps per-drive directories as "=C:=C:\\dir": never
			// inherited.)
			vars[key(name)] = kv
		}
	}
	for name, v := range env {
		vars[key(name)] = name + "=" + v
	}
	out := make([]string, 0, len(vars))
	for _, kv := range vars {
		out = append(out, kv)
	}
	slices.Sort(out)
	return out
}
