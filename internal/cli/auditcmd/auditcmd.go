// Package auditcmd provides the `mcpgate audit` commands: verify the
// tamper-evident audit log, tail it and export it.
package auditcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// Commands returns the `audit` command tree. dataDir is called when a
// command runs and names the directory holding the store and the
// checkpoint key.
func Commands(dataDir func() string) []*cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, tail and export the tamper-evident audit log",
	}
	cmd.AddCommand(verifyCommand(dataDir), tailCommand(dataDir), exportCommand(dataDir), publicKeyCommand(dataDir))
	return []*cobra.Command{cmd}
}

// openStore opens the existing database in the data directory; it does
// not create one.
func openStore(ctx context.Context, dataDir func() string) (*sqlite.Store, error) {
	return datadir.OpenExisting(ctx, dataDir())
}

func verifyCommand(dataDir func() string) *cobra.Command {
	var pubPath string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit chain and its signed checkpoints; exit 1 naming the first bad record",
		Long: `Verify walks the whole audit chain in the data directory's database and
checks every record's hash, the links between records and the Ed25519
signatures of the checkpoints. It names the first record that was edited,
deleted, inserted or reordered, and exits with status 1 if there is one.

The checkpoint key is read from --public-key (a PEM PUBLIC KEY, as printed
by "mcpgate audit public-key"), or else from the signing key in the data
directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := openStore(ctx, dataDir)
			if err != nil {
				return err
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			path := pubPath
			if path == "" {
				path = datadir.AuditKey(dataDir())
				if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
					path = ""
				}
			}
			var pub []byte
			if path != "" {
				k, err := audit.LoadPublicKey(path)
				if err != nil {
					return err
				}
				pub = k
			}
			rep, err := audit.Verify(ctx, st, pub)
			if err != nil {
				return err
			}
			if !rep.SignaturesChecked {
				fmt.Fprintln(out, "warning: no checkpoint key found; checkpoint signatures were not checked (use --public-key)")
			}
			if !rep.OK {
				fmt.Fprintf(out, "audit log FAILED verification: %s\n", rep.FirstBad)
				return fmt.Errorf("audit verification failed: %s", rep.FirstBad)
			}
			fmt.Fprintf(out, "audit log OK: %d records, %d checkpoints", rep.Records, rep.Checkpoints)
			if rep.LastCheckpointSeq > 0 {
				fmt.Fprintf(out, ", last signed checkpoint at record %d", rep.LastCheckpointSeq)
			}
			fmt.Fprintln(out)
			if rep.Unanchored > 0 {
				fmt.Fprintf(out, "note: the last %d records are not yet covered by a signed checkpoint\n", rep.Unanchored)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pubPath, "public-key", "", "PEM file with the checkpoint verification key (default: the signing key in the data directory)")
	return cmd
}

func tailCommand(dataDir func() string) *cobra.Command {
	var n int
	var follow, asJSON bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the last audit records (and follow new ones with -f)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 0 {
				return errors.New("-n must not be negative")
			}
			if interval <= 0 {
				return errors.New("--interval must be positive")
			}
			ctx := cmd.Context()
			st, err := openStore(ctx, dataDir)
			if err != nil {
				return err
			}
			defer st.Close()
			p := newPrinter(cmd.OutOrStdout(), asJSON)
			var from uint64 = 1
			last, err := st.LastAudit(ctx)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			default:
				if uint64(n) < last.Seq {
					from = last.Seq - uint64(n) + 1
				} else {
					from = 1
				}
			}
			next, err := p.printFrom(ctx, st, from)
			if err != nil {
				return err
			}
			if !follow {
				return nil
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				if next, err = p.printFrom(ctx, st, next); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		},
	}
	cmd.Flags().IntVarP(&n, "lines", "n", 10, "number of records to print")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing records as they are appended")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines instead of a table")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often -f looks for new records")
	return cmd
}

// printer writes records as table rows or JSON lines.
type printer struct {
	w      io.Writer
	asJSON bool
}

func newPrinter(w io.Writer, asJSON bool) *printer { return &printer{w: w, asJSON: asJSON} }

// printFrom prints the records from seq on and returns the sequence
// number after the last one printed.
func (p *printer) printFrom(ctx context.Context, st store.AuditLog, from uint64) (uint64, error) {
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	next := from
	for sr, err := range st.ReadAudit(ctx, from) {
		if err != nil {
			return next, err
		}
		if err := p.print(tw, audit.FromStore(sr)); err != nil {
			return next, err
		}
		next = sr.Seq + 1
	}
	return next, tw.Flush()
}

func (p *printer) print(tw *tabwriter.Writer, r *audit.Record) error {
	if p.asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("record %d: %w", r.Seq, err)
		}
		_, err = fmt.Fprintf(tw, "%s\n", b)
		return err
	}
	principal := strings.Join(nonEmpty(r.User, r.Client, r.Session), " / ")
	_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%dµs\n", r.Seq, r.Time.Format(time.RFC3339Nano), dash(principal),
		dash(r.Action+phase(r.Phase)), dash(joinNonEmpty(r.Upstream, r.Target)), dash(r.Decision), dash(r.Outcome), dash(r.Error), r.LatencyMicros)
	return err
}

func phase(p string) string {
	if p == "" {
		return ""
	}
	return " (" + p + ")"
}

func joinNonEmpty(a, b string) string { return strings.Join(nonEmpty(a, b), ":") }

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	// Keep one record on one line whatever its fields hold.
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func exportCommand(dataDir func() string) *cobra.Command {
	var format, since, out string
	var fromSeq uint64
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write audit records to a file as JSON lines",
		Long: `Export writes the audit records (from --from-seq, and no older than
--since) as JSON lines, to --out or standard output. --since is an RFC 3339
time (2026-11-26T09:00:00Z) or a duration back from now (24h).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "jsonl" {
				return fmt.Errorf("unsupported --format %q (supported: jsonl)", format)
			}
			var after time.Time
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				after = t
			}
			ctx := cmd.Context()
			st, err := openStore(ctx, dataDir)
			if err != nil {
				return err
			}
			defer st.Close()
			w := cmd.OutOrStdout()
			var f *os.File
			if out != "" && out != "-" {
				f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				defer f.Close()
				w = f
			}
			n := 0
			var buf []byte
			for sr, err := range st.ReadAudit(ctx, max(fromSeq, 1)) {
				if err != nil {
					return err
				}
				if !after.IsZero() && sr.Time.Before(after) {
					continue
				}
				b, err := json.Marshal(audit.FromStore(sr))
				if err != nil {
					return fmt.Errorf("record %d: %w", sr.Seq, err)
				}
				buf = append(append(buf, b...), '\n')
				n++
				if len(buf) > 1<<16 {
					if _, err := w.Write(buf); err != nil {
						return fmt.Errorf("export: %w", err)
					}
					buf = buf[:0]
				}
			}
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if f != nil {
				if err := f.Sync(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
				if err := f.Close(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "exported %d records to %s\n", n, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "jsonl", "output format (jsonl)")
	cmd.Flags().StringVar(&since, "since", "", "only records at or after this RFC 3339 time, or this long ago (e.g. 24h)")
	cmd.Flags().Uint64Var(&fromSeq, "from-seq", 1, "first sequence number to export")
	cmd.Flags().StringVarP(&out, "out", "o", "-", "output file (- for standard output)")
	return cmd
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-11-26T09:00:00Z) or a positive duration (24h)", s)
	}
	return now.Add(-d), nil
}

func publicKeyCommand(dataDir func() string) *cobra.Command {
	return &cobra.Command{
		Use:   "public-key",
		Short: "Print the checkpoint verification key (PEM), to verify the log elsewhere",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := dataDir()
			if dir == "" {
				return errors.New("no data directory configured")
			}
			pub, err := audit.LoadPublicKey(datadir.AuditKey(dir))
			if err != nil {
				return err
			}
			b, err := audit.EncodePublicKey(pub)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
}
