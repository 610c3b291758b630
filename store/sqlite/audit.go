package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/store"
)

var (
	_ store.AuditLog     = (*Store)(nil)
	_ store.AuditChainer = (*Store)(nil)
)

const auditCols = `seq, time, principal_user, principal_client, principal_session, upstream, action, target, decision, policy_version, policies, args_digest, result_digest, args, result, outcome, error, latency_us, phase, prev_hash, hash`

// auditPage is how many records ReadAudit fetches per query; the
// connection is not held while the caller handles a page.
const auditPage = 512

func scanAudit(r scanner) (*store.AuditRecord, error) {
	var a store.AuditRecord
	var seq, t int64
	var policies string
	if err := r.Scan(&seq, &t, &a.User, &a.Client, &a.Session, &a.Upstream, &a.Action, &a.Target, &a.Decision, &a.PolicyVersion, &policies,
		&a.ArgsDigest, &a.ResultDigest, &a.Args, &a.Result, &a.Outcome, &a.Error, &a.LatencyMicros, &a.Phase, &a.PrevHash, &a.Hash); err != nil {
		return nil, err
	}
	if seq < 0 {
		return nil, fmt.Errorf("audit record with negative seq %d", seq)
	}
	a.Seq = uint64(seq)
	a.Time = fromTS(t)
	if policies != "" {
		if err := json.Unmarshal([]byte(policies), &a.Policies); err != nil {
			return nil, fmt.Errorf("audit record %d: stored policies: %w", seq, err)
		}
	}
	return &a, nil
}

func lastAudit(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (*store.AuditRecord, error) {
	a, err := scanAudit(q.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit_records ORDER BY seq DESC LIMIT 1`))
	if err != nil {
		return nil, wrap("last audit record", err)
	}
	return a, nil
}

// AppendAudit implements store.AuditLog. The batch is one IMMEDIATE
// transaction, so it is atomic and, with the WAL's synchronous commit,
// durable on return.
func (s *Store) AppendAudit(ctx context.Context, recs []*store.AuditRecord) error {
	return s.AppendAuditChained(ctx, recs, nil)
}

// AppendAuditChained implements store.AuditChainer: the head is read
// inside the IMMEDIATE transaction, which holds SQLite's write lock, so
// no other connection or process can append between the read and the
// commit. A nil chain stores recs as given, as AppendAudit does.
func (s *Store) AppendAuditChained(ctx context.Context, recs []*store.AuditRecord, chain func(last *store.AuditRecord) error) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("audit append", err)
	}
	defer tx.Rollback()
	last, err := lastAudit(ctx, tx)
	if errors.Is(err, store.ErrNotFound) {
		last, err = nil, nil
	}
	if err != nil {
		return err
	}
	if chain != nil {
		if err := chain(last); err != nil {
			return err
		}
	}
	if err := store.CheckAuditAppend(last, recs); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_records (`+auditCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return wrap("audit append", err)
	}
	defer stmt.Close()
	for _, r := range recs {
		if r.Seq > math.MaxInt64 {
			return fmt.Errorf("audit record seq %d out of range", r.Seq)
		}
		policies := ""
		if len(r.Policies) > 0 {
			b, err := json.Marshal(r.Policies)
			if err != nil {
				return fmt.Errorf("audit record %d: policies: %w", r.Seq, err)
			}
			policies = string(b)
		}
		if _, err := stmt.ExecContext(ctx, int64(r.Seq), ts(r.Time), r.User, r.Client, r.Session, r.Upstream, r.Action, r.Target, r.Decision,
			r.PolicyVersion, policies, r.ArgsDigest, r.ResultDigest, nullBytes(r.Args), nullBytes(r.Result), r.Outcome, r.Error,
			r.LatencyMicros, r.Phase, r.PrevHash, r.Hash); err != nil {
			if isUnique(err) {
				return fmt.Errorf("audit record %d: %w", r.Seq, store.ErrAuditConflict)
			}
			return wrap(fmt.Sprintf("audit record %d", r.Seq), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap("audit append", err)
	}
	return nil
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// ReadAudit implements store.AuditLog.
func (s *Store) ReadAudit(ctx context.Context, from uint64) iter.Seq2[*store.AuditRecord, error] {
	return func(yield func(*store.AuditRecord, error) bool) {
		if from > math.MaxInt64 {
			return
		}
		next := int64(from)
		for {
			page, err := s.readAuditPage(ctx, next)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, r := range page {
				if !yield(r, nil) {
					return
				}
			}
			if len(page) < auditPage {
				return
			}
			next = int64(page[len(page)-1].Seq) + 1
		}
	}
}

func (s *Store) readAuditPage(ctx context.Context, from int64) ([]*store.AuditRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_records WHERE seq >= ? ORDER BY seq LIMIT ?`, from, auditPage)
	if err != nil {
		return nil, wrap("audit records", err)
	}
	defer rows.Close()
	out := make([]*store.AuditRecord, 0, 16)
	for rows.Next() {
		a, err := scanAudit(rows)
		if err != nil {
			return nil, wrap("audit records", err)
		}
		out = append(out, a)
	}
	return out, wrap("audit records", rows.Err())
}

// LastAudit implements store.AuditLog.
func (s *Store) LastAudit(ctx context.Context) (*store.AuditRecord, error) {
	return lastAudit(ctx, s.db)
}

// PutAuditCheckpoint implements store.AuditLog.
func (s *Store) PutAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	if c.Seq > math.MaxInt64 {
		return fmt.Errorf("audit checkpoint seq %d out of range", c.Seq)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, signature, key_id, time) VALUES (?,?,?,?,?)`,
		int64(c.Seq), c.Hash, c.Signature, c.KeyID, ts(c.Time))
	return wrap(fmt.Sprintf("audit checkpoint %d", c.Seq), err)
}

// ListAuditCheckpoints implements store.AuditLog.
func (s *Store) ListAuditCheckpoints(ctx context.Context) ([]*store.AuditCheckpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, hash, signature, key_id, time FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, wrap("audit checkpoints", err)
	}
	defer rows.Close()
	var out []*store.AuditCheckpoint
	for rows.Next() {
		var c store.AuditCheckpoint
		var seq, t int64
		if err := rows.Scan(&seq, &c.Hash, &c.Signature, &c.KeyID, &t); err != nil {
			return nil, wrap("audit checkpoints", err)
		}
		if seq < 0 {
			return nil, fmt.Errorf("audit checkpoint with negative seq %d", seq)
		}
		c.Seq, c.Time = uint64(seq), fromTS(t)
		out = append(out, &c)
	}
	return out, wrap("audit checkpoints", rows.Err())
}
