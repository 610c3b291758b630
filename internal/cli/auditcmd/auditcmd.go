// Package auditcmd provides the `mcpgate audit` commands: verify the
// tamper-evident audit log, tail it and export it.
package auditcmd

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store"
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
func openStore(ctx context.Context, dataDir func() string) (datadir.DB, error) {
	return datadir.OpenCommand(ctx, dataDir(), false)
}

func verifyCommand(dataDir func() string) *cobra.Command {
	var pubPath, cpPath string
	var allowDataDirKey bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit chain and its signed checkpoints; exit 1 naming the first bad record",
		Long: `Verify walks the whole audit chain in the data directory's database and
checks every record's hash, the links between records and the Ed25519
signatures of the checkpoints. It names the first record that was edited,
deleted, inserted or reordered, and exits with status 1 if there is one.

The database alone cannot show that its tail was cut off together with its
checkpoints, nor that the whole chain was rewritten and re-signed by
someone who could read the signing key. --checkpoints FILE compares the
database with checkpoints kept outside it: the checkpoint file
(audit.checkpoint_file) or a JSON lines export (audit.jsonl) holding
checkpoint lines. Every checkpoint in FILE must be signed by the public
key, and the database must hold each record a checkpoint covers, with the
hash the checkpoint signed; otherwise verify names the first missing or
differing record.

The checkpoint key is read from --public-key (a PEM PUBLIC KEY, as printed
by "mcpgate audit public-key"), else from audit.public_key_file of the
configuration, else from the signing key (audit.signing_key_file, or the
key in the data directory). With --checkpoints the key in the data
directory is refused unless --allow-data-dir-key is given: whoever could
rewrite the database could also have read that key and signed forged
checkpoints with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			acfg := cliaudit.ConfigFrom(ctx)
			path, fromDataDir, err := verificationKeyPath(dataDir(), pubPath, acfg)
			if err != nil {
				return err
			}
			if cpPath != "" && fromDataDir && !allowDataDirKey {
				if path == "" {
					return errors.New("--checkpoints needs the checkpoint public key: give --public-key FILE or set audit.public_key_file")
				}
				return fmt.Errorf("--checkpoints: refusing to verify with the key %s in the data directory: whoever could rewrite the database could also have read that key and re-signed a forged chain and checkpoints with it; give --public-key with the public key kept elsewhere (printed by \"mcpgate audit public-key\" when the log was set up), set audit.public_key_file, or pass --allow-data-dir-key to use it anyway", path)
			}
			st, err := openStore(ctx, dataDir)
			if err != nil {
				return err
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			var pub ed25519.PublicKey
			if path != "" {
				k, err := audit.LoadPublicKey(path)
				if err != nil {
					return err
				}
				pub = k
			}
			var ev *audit.ExternalEvidence
			if cpPath != "" {
				f, err := os.Open(cpPath)
				if err != nil {
					return fmt.Errorf("--checkpoints: %w", err)
				}
				ev, err = audit.ReadExternal(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("--checkpoints %s: %w", cpPath, err)
				}
			}
			rep, err := audit.Verify(ctx, st, pub)
			if err != nil {
				return err
			}
			if !rep.SignaturesChecked {
				fmt.Fprintln(out, "warning: no checkpoint key found; checkpoint signatures were not checked (use --public-key)")
			}
			var xrep *audit.ExternalReport
			if ev != nil {
				if xrep, err = audit.VerifyExternal(ctx, st, ev, pub, cpPath); err != nil {
					return fmt.Errorf("--checkpoints %s: %w", cpPath, err)
				}
			}
			// The first problem in sequence order, from either check.
			bad := rep.FirstBad
			if xrep != nil && xrep.FirstBad != nil && (bad == nil || xrep.FirstBad.Seq < bad.Seq) {
				bad = xrep.FirstBad
			}
			if bad != nil {
				fmt.Fprintf(out, "audit log FAILED verification: %s\n", bad)
				// The other check's problem too, when both found one.
				for _, p := range []*audit.Problem{rep.FirstBad, xrepBad(xrep)} {
					if p != nil && p != bad {
						fmt.Fprintf(out, "also: %s\n", p)
					}
				}
				return fmt.Errorf("audit verification failed: %s", bad)
			}
			fmt.Fprintf(out, "audit log OK: %d records, %d checkpoints", rep.Records, rep.Checkpoints)
			if rep.LastCheckpointSeq > 0 {
				fmt.Fprintf(out, ", last signed checkpoint at record %d", rep.LastCheckpointSeq)
			}
			fmt.Fprintln(out)
			if xrep != nil {
				fmt.Fprintf(out, "external checkpoints OK: %d checkpoints in %s signed by key %s, the database matches them up to record %d",
					xrep.Checkpoints, cpPath, audit.KeyID(pub), xrep.Confirmed)
				if xrep.Records > 0 {
					fmt.Fprintf(out, " (and %d exported records)", xrep.Records)
				}
				fmt.Fprintln(out)
			}
			if rep.Unanchored > 0 {
				fmt.Fprintf(out, "note: the last %d records are not yet covered by a signed checkpoint\n", rep.Unanchored)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pubPath, "public-key", "", "PEM file with the checkpoint verification key (default: audit.public_key_file, else the signing key)")
	cmd.Flags().StringVar(&cpPath, "checkpoints", "", "checkpoint `file` or JSON lines export holding checkpoints kept outside the database; fail if the database lacks or changed a record they cover")
	cmd.Flags().BoolVar(&allowDataDirKey, "allow-data-dir-key", false, "with --checkpoints, accept a public key read from the data directory")
	return cmd
}

func xrepBad(x *audit.ExternalReport) *audit.Problem {
	if x == nil {
		return nil
	}
	return x.FirstBad
}

// verificationKeyPath returns the file to read the checkpoint public key
// from: flag, else audit.public_key_file, else the signing key file, else
// the key in the data directory ("" if there is none). fromDataDir says
// the file is inside the data directory.
func verificationKeyPath(dir, flag string, a *config.Audit) (path string, fromDataDir bool, err error) {
	switch {
	case flag != "":
		path = flag
	case a != nil && a.PublicKeyFile != "":
		path = a.PublicKeyFile
	case a != nil && a.SigningKeyFile != "":
		path = a.SigningKeyFile
	case a != nil && len(a.SigningCommand) > 0:
		return "", false, errors.New("audit.signing_command is set without audit.public_key_file: give --public-key")
	default:
		path = datadir.AuditKey(dir)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return "", true, nil
		}
		return path, true, nil
	}
	return path, inside(dir, path), nil
}

// inside reports whether path is in dir (after resolving symbolic links
// where possible).
func inside(dir, path string) bool {
	if dir == "" {
		return false
	}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return p
	}
	rel, err := filepath.Rel(abs(dir), abs(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
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
		Long: `Public-key prints the checkpoint verification key as PEM: the key of
audit.public_key_file when configured, else the public half of the signing
key (audit.signing_key_file, or the key in the data directory). Keep a
copy outside the gateway's host: "mcpgate audit verify --checkpoints"
needs a key that whoever can write the database could not have replaced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := dataDir()
			if dir == "" {
				return errors.New("no data directory configured")
			}
			path, _, err := verificationKeyPath(dir, "", cliaudit.ConfigFrom(cmd.Context()))
			if err != nil {
				return err
			}
			if path == "" {
				path = datadir.AuditKey(dir)
			}
			pub, err := audit.LoadPublicKey(path)
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
