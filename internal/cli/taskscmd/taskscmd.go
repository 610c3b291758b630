// Package taskscmd provides the `mcpgate tasks` commands, which list,
// show and cancel the tasks clients started through the gateway, as
// recorded in the gateway's SQLite store.
//
// The commands work on the database only, with the gateway stopped or
// running. `tasks cancel` records a cancel request on the task (status
// cancelled, message store.TaskCancelRequested) and an audit record
// (admin.task.cancelled, naming the operator). A running gateway sharing
// the database looks for cancel requests every 200 ms: for a task it
// watches (it created it since it started) it cancels the task at the
// upstream at once, records the outcome and tells the owner's connected
// sessions; a task it holds for approval is cancelled in the gateway.
// Without a running gateway the upstream is not reached: the task is only
// recorded as cancelled.
package taskscmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// Commands returns the `tasks` command tree. dataDir is called when a
// command runs and names the directory holding the store.
func Commands(dataDir func() string) []*cobra.Command {
	return []*cobra.Command{tasksCommand(dataDir)}
}

// Task is a task as `tasks list --json` prints it.
type Task struct {
	ID             string `json:"id"`
	Owner          string `json:"owner"`
	Client         string `json:"client,omitzero"`
	Upstream       string `json:"upstream"`
	UpstreamTaskID string `json:"upstream_task_id,omitzero"`
	// Tool is the tool the task runs, as the client named it ("" for
	// tasks recorded before the gateway kept it).
	Tool string `json:"tool,omitzero"`
	// ApprovalID is the approval a task held by the gateway waits or
	// waited for.
	ApprovalID    string    `json:"approval_id,omitzero"`
	Status        string    `json:"status"`
	StatusMessage string    `json:"status_message,omitzero"`
	CreatedAt     time.Time `json:"created_at"`
	AgeSeconds    float64   `json:"age_seconds"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	TTLSeconds    float64   `json:"ttl_seconds,omitzero"`
	LastChange    time.Time `json:"last_change"`
	// CancelRequested says that `tasks cancel` asked for it and no
	// gateway has carried the request out yet.
	CancelRequested bool `json:"cancel_requested,omitzero"`
}

func tasksCommand(dataDir func() string) *cobra.Command {
	var asJSON bool
	var owner string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tasks clients started through the gateway (id, owner, client, upstream, tool, status, age, ttl, last change)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := datadir.OpenCommand(cmd.Context(), dataDir(), false)
			if err != nil {
				return err
			}
			defer st.Close()
			recs, err := st.ListGatewayTasks(cmd.Context(), owner)
			if err != nil {
				return err
			}
			now := time.Now()
			tasks := make([]Task, 0, len(recs))
			for _, r := range recs {
				tasks = append(tasks, taskOf(r, now))
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), tasks)
			}
			return printTasks(cmd.OutOrStdout(), tasks)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.Flags().StringVar(&owner, "owner", "", "list only the tasks of this principal")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one task: owner, client, upstream, tool, status and message, created, last change, age, ttl and expiry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := datadir.OpenCommand(cmd.Context(), dataDir(), false)
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := st.GetGatewayTask(cmd.Context(), args[0])
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no task %q in the database", args[0])
			}
			if err != nil {
				return err
			}
			t := taskOf(r, time.Now())
			if showJSON {
				return writeJSON(cmd.OutOrStdout(), t)
			}
			return printTask(cmd.OutOrStdout(), t)
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	var reason string
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Ask for a task to be cancelled (a running gateway cancels it at the upstream)",
		Long: `Record a cancel request for a task started through the gateway: the task is
recorded as cancelled, and a running gateway using the same database that
watches the task sees the request within 200 ms, cancels the task at its
upstream and records the outcome (a task the gateway holds for approval is
cancelled in the gateway). With no gateway running the upstream is not
reached; the task is only recorded as cancelled. The request is recorded in
the audit log (admin.task.cancelled), naming who asked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			st, err := datadir.OpenCommand(ctx, dataDir(), false)
			if err != nil {
				return err
			}
			defer st.Close()
			rec, err := cliaudit.Open(ctx, st, dataDir())
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, rec.Close()) }()
			return Cancel(ctx, st, rec, cmd.OutOrStdout(), args[0], reason)
		},
	}
	cancel.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")

	tasks := &cobra.Command{
		Use:   "tasks",
		Short: "List, show and cancel the tasks clients started through the gateway",
		Long: `List, show and cancel the tasks clients started through the gateway, as
recorded in its database. The gateway may be stopped or running.`,
		Args: cobra.NoArgs,
		RunE: list.RunE,
	}
	tasks.Flags().AddFlagSet(list.Flags())
	tasks.AddCommand(list, show, cancel)
	return tasks
}

// Cancel records a cancel request for the task id in st and an audit
// record with rec, and writes what it did to out.
func Cancel(ctx context.Context, st store.GatewayTasks, rec *cliaudit.Recorder, out io.Writer, id, reason string) error {
	t, err := st.GetGatewayTask(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no task %q in the database", id)
	}
	if err != nil {
		return err
	}
	if t.StatusMessage == store.TaskCancelRequested {
		fmt.Fprintf(out, "task %s: cancellation already requested\n", id)
		return nil
	}
	if mcp.TaskStatus(t.Status).IsTerminal() {
		return fmt.Errorf("task %s already ended: %s", id, t.Status)
	}
	prev := t.Status
	t.Status, t.StatusMessage, t.UpdatedAt = string(mcp.TaskStatusCancelled), store.TaskCancelRequested, time.Now().UTC()
	if err := st.PutGatewayTask(ctx, t); err != nil {
		return err
	}
	detail := fmt.Sprintf("cancel requested for task of %s at upstream %s (upstream task %s, was %s)", t.Principal, t.Upstream, t.UpstreamTaskID, prev)
	if reason != "" {
		detail += fmt.Sprintf("; reason %q", reason)
	}
	if err := rec.Record(ctx, &audit.Record{Action: cliaudit.ActionTaskCancelled, Upstream: t.Upstream, Target: id, Error: detail}); err != nil {
		return err
	}
	fmt.Fprintf(out, "task %s of %s recorded as cancelled; a running gateway cancels it at upstream %s (without one the upstream is not reached)\n", id, t.Principal, t.Upstream)
	return nil
}

func taskOf(r *store.GatewayTask, now time.Time) Task {
	t := Task{ID: r.ID, Owner: r.Principal, Client: r.ClientID, Upstream: r.Upstream, UpstreamTaskID: r.UpstreamTaskID, Tool: r.Tool, ApprovalID: r.ApprovalID,
		Status: r.Status, StatusMessage: r.StatusMessage, CreatedAt: r.CreatedAt, AgeSeconds: now.Sub(r.CreatedAt).Seconds(),
		ExpiresAt: r.ExpiresAt, LastChange: r.UpdatedAt, CancelRequested: r.StatusMessage == store.TaskCancelRequested}
	if !r.ExpiresAt.IsZero() {
		t.TTLSeconds = r.ExpiresAt.Sub(r.CreatedAt).Seconds()
	}
	return t
}

func printTasks(w io.Writer, tasks []Task) error {
	if len(tasks) == 0 {
		_, err := fmt.Fprintln(w, "no tasks")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOWNER\tCLIENT\tUPSTREAM\tTOOL\tSTATUS\tAGE\tTTL\tLAST CHANGE")
	for _, t := range tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Owner, dash(t.Client), t.Upstream, dash(t.Tool), t.status(),
			seconds(t.AgeSeconds), t.ttl(), t.LastChange.Format(time.RFC3339))
	}
	return tw.Flush()
}

// printTask prints one task, a field a line.
func printTask(w io.Writer, t Task) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	expires := "never"
	if !t.ExpiresAt.IsZero() {
		expires = t.ExpiresAt.Format(time.RFC3339)
	}
	for _, f := range [][2]string{
		{"id", t.ID},
		{"owner", t.Owner},
		{"client", dash(t.Client)},
		{"upstream", t.Upstream},
		{"upstream task", dash(t.UpstreamTaskID)},
		{"tool", dash(t.Tool)},
		{"approval", dash(t.ApprovalID)},
		{"status", t.status()},
		{"status message", dash(t.StatusMessage)},
		{"created", t.CreatedAt.Format(time.RFC3339)},
		{"last change", t.LastChange.Format(time.RFC3339)},
		{"age", seconds(t.AgeSeconds)},
		{"ttl", t.ttl()},
		{"expires", expires},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
	}
	return tw.Flush()
}

func (t *Task) status() string {
	if t.CancelRequested {
		return t.Status + " (cancel requested)"
	}
	return t.Status
}

func (t *Task) ttl() string {
	if t.TTLSeconds > 0 {
		return seconds(t.TTLSeconds)
	}
	return "-"
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := (*jsontext.Value)(&raw).Indent(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", raw)
	return err
}
