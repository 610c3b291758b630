package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
)

// Files a running gateway keeps in its data directory for `mcpgate
// reload`.
const (
	// pidFile holds the process id of the gateway serving with the data
	// directory, while it runs.
	pidFile = "mcpgate.pid"
	// reloadStatusFile holds the outcome of the last reload (reloadStatus).
	reloadStatusFile = "reload.json"
)

// reloadTimeout bounds how long `mcpgate reload` waits for the gateway to
// report the outcome.
const reloadTimeout = 30 * time.Second

// reloadStatus is the outcome of one reload, as the gateway writes it to
// reloadStatusFile. PID and Seq (1, 2, ... per process) tell one reload
// from the one before.
type reloadStatus struct {
	PID    int               `json:"pid"`
	Seq    int               `json:"seq"`
	Time   time.Time         `json:"time"`
	OK     bool              `json:"ok"`
	Errors []string          `json:"errors,omitempty"`
	Result *app.ReloadResult `json:"result,omitempty"`
}

// writePID records this process as the gateway of dir. The returned
// function removes the file again if it still names this process.
func writePID(dir string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, pidFile)
	pid := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(path, []byte(pid+"\n"), 0o600); err != nil {
		return nil, err
	}
	return func() {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == pid {
			os.Remove(path)
		}
	}, nil
}

// reloader re-reads the configuration on SIGHUP and applies it to the
// running gateway, printing and recording (reloadStatusFile) the outcome.
type reloader struct {
	app    *app.App
	reread func() (*config.Config, error)
	dir    string
	out    io.Writer
	seq    int
}

// reload runs one reload.
func (r *reloader) reload(ctx context.Context) {
	r.seq++
	st := &reloadStatus{PID: os.Getpid(), Seq: r.seq, Time: time.Now().UTC()}
	cfg, err := r.reread()
	var res *app.ReloadResult
	if err != nil {
		r.app.ReloadRejected(ctx, err)
	} else {
		res, err = r.app.Reload(ctx, cfg)
	}
	if err != nil {
		st.Errors = problems(err)
		fmt.Fprintln(r.out, "mcpgate: reload rejected; the running configuration stays in force:")
		for _, p := range st.Errors {
			fmt.Fprintf(r.out, "  - %s\n", p)
		}
	} else {
		st.OK, st.Result = true, res
		fmt.Fprintf(r.out, "mcpgate: configuration reloaded: %s\n", res.Summary())
	}
	if r.dir == "" {
		return
	}
	b, _ := json.Marshal(st)
	tmp := filepath.Join(r.dir, reloadStatusFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err == nil {
		err = os.Rename(tmp, filepath.Join(r.dir, reloadStatusFile))
		if err != nil {
			fmt.Fprintf(r.out, "warning: recording the reload's outcome: %v\n", err)
		}
	}
}

// problems splits an error into the problems it lists.
func problems(err error) []string {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		return append([]string(nil), ve.Problems...)
	}
	return strings.Split(err.Error(), "\n")
}

func newReloadCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the running gateway re-read its configuration",
		Long: `Reload tells the gateway serving with this data directory (it records its
process id in mcpgate.pid there) to re-read its configuration, as SIGHUP does,
waits for the outcome and prints it: the upstreams added, removed and changed,
whether the policy files were reloaded, the settings applied live, and those
that changed but need a restart. A configuration with errors is rejected and
the running one stays in force: reload prints the errors and exits with 1.
See docs/configuration.md, "Reloading the configuration".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _, err := g.resolveData()
			if err != nil {
				return err
			}
			return runReload(cmd.Context(), dir, cmd.OutOrStdout())
		},
	}
}

// runReload signals the gateway of dir and reports the outcome.
func runReload(ctx context.Context, dir string, out io.Writer) error {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no gateway is serving with the data directory %s (no %s)", dir, pidFile)
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("%s: not a process id: %q", filepath.Join(dir, pidFile), strings.TrimSpace(string(b)))
	}
	before := readReloadStatus(dir)
	if err := signalReload(pid); err != nil {
		return fmt.Errorf("signalling the gateway (pid %d): %w", pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st := readReloadStatus(dir)
		if st != nil && st.PID == pid && (before == nil || before.PID != pid || st.Seq > before.Seq) {
			return printReloadStatus(out, st)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("the gateway (pid %d) was signalled but reported no outcome within %s; see its log", pid, reloadTimeout)
		}
	}
}

func readReloadStatus(dir string) *reloadStatus {
	b, err := os.ReadFile(filepath.Join(dir, reloadStatusFile))
	if err != nil {
		return nil
	}
	var st reloadStatus
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	return &st
}

func printReloadStatus(out io.Writer, st *reloadStatus) error {
	if !st.OK {
		fmt.Fprintf(out, "reload rejected; the running configuration stays in force (%d problem%s):\n", len(st.Errors), plural(len(st.Errors)))
		for _, p := range st.Errors {
			fmt.Fprintf(out, "  - %s\n", p)
		}
		return &exitError{code: 1}
	}
	fmt.Fprintf(out, "configuration reloaded: %s\n", st.Result.Summary())
	return nil
}
