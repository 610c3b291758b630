package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"

	"github.com/go-json-experiment/json"
	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

var (
	_ store.AuditLog     = (*Store)(nil)
	_ store.AuditChainer = (*Store)(nil)
	_ store.AuditSyncer  = (*Store)(nil)
)

const auditCols = `seq, time, principal_user, principal_client, principal_session, upstream, action, target, decision, policy_version, policies, args_digest, result_digest, args, result, outcome, error, latency_us, phase, prev_hash, hash`

// auditPage is how many records ReadAudit fetches per query; no
// connection is held while the caller handles a page.
const auditPage = 512

// auditHeadLock names the advisory lock every audit append holds for its
// transaction, so that appends by any number of processes are serialised
// and each is chained to the head as it is at its commit.
const auditHeadLock = "mcpgate:audit-head"

func scanAudit(r pgx.Row) (*store.AuditRecord, error) {
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

// AppendAudit implements store.AuditLog. The batch is one transaction: it
// is atomic, and durable on return as far as the server's
// synchronous_commit setting makes commits durable (on by default).
func (s *Store) AppendAudit(ctx context.Context, recs []*store.AuditRecord) error {
	return s.AppendAuditChained(ctx, recs, nil)
}

// AppendAuditChained implements store.AuditChainer. The transaction first
// takes a transaction-scoped advisory lock held by every audit append,
// then reads the head, so no other connection, process or replica can
// append between the read and the commit: writers never fork the chain.
// A nil chain stores recs as given, as AppendAudit does. Only Seq and
// Hash of the head given to chain are set.
func (s *Store) AppendAuditChained(ctx context.Context, recs []*store.AuditRecord, chain func(last *store.AuditRecord) error) error {
	if len(recs) == 0 {
		return nil
	}
	var result error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockXact(ctx, tx, auditHeadLock); err != nil {
			return wrap("audit append", err)
		}
		last, err := auditHead(ctx, tx)
		if err != nil {
			return err
		}
		if chain != nil {
			if err := chain(last); err != nil {
				result = err
				return errRollback
			}
		}
		if err := store.CheckAuditAppend(last, recs); err != nil {
			result = err
			return errRollback
		}
		return insertRecords(ctx, tx, recs)
	})
	if errors.Is(err, errRollback) {
		return result
	}
	if err != nil {
		return wrap("audit append", err)
	}
	return nil
}

// AppendAuditWritten implements store.AuditSyncer. PostgreSQL makes a
// commit durable according to its own settings (synchronous_commit,
// fsync, replication), not per call: AppendAuditWritten is
// AppendAuditChained, and returns once the commit is acknowledged.
func (s *Store) AppendAuditWritten(ctx context.Context, recs []*store.AuditRecord, chain func(last *store.AuditRecord) error) error {
	return s.AppendAuditChained(ctx, recs, chain)
}

// SyncAudit implements store.AuditSyncer. It does nothing: every append
// returned after its commit, which the server made durable as its
// settings say (see AppendAuditWritten); the audit log's sync policy
// therefore has no effect on PostgreSQL.
func (s *Store) SyncAudit(ctx context.Context) error {
	return ctx.Err()
}

// auditHead returns the Seq and Hash of the last record (nil for an empty
// log).
func auditHead(ctx context.Context, q querier) (*store.AuditRecord, error) {
	var seq int64
	var hash string
	err := q.QueryRow(ctx, `SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, wrap("audit chain head", err)
	case seq < 0:
		return nil, fmt.Errorf("audit record with negative seq %d", seq)
	}
	return &store.AuditRecord{Seq: uint64(seq), Hash: hash}, nil
}

// insertRecords inserts recs in one round trip (a batch).
func insertRecords(ctx context.Context, tx pgx.Tx, recs []*store.AuditRecord) error {
	b := &pgx.Batch{}
	for _, r := range recs {
		if r.Seq > math.MaxInt64 {
			return fmt.Errorf("audit record seq %d out of range", r.Seq)
		}
		policies := ""
		if len(r.Policies) > 0 {
			p, err := json.Marshal(r.Policies)
			if err != nil {
				return fmt.Errorf("audit record %d: policies: %w", r.Seq, err)
			}
			policies = string(p)
		}
		b.Queue(`INSERT INTO audit_records (`+auditCols+`) VALUES (`+params(1, 21)+`)`,
			int64(r.Seq), ts(r.Time), r.User, r.Client, r.Session, r.Upstream, r.Action, r.Target, r.Decision,
			r.PolicyVersion, policies, r.ArgsDigest, r.ResultDigest, r.Args, r.Result, r.Outcome, r.Error,
			r.LatencyMicros, r.Phase, r.PrevHash, r.Hash)
	}
	res := tx.SendBatch(ctx, b)
	for _, r := range recs {
		if _, err := res.Exec(); err != nil {
			res.Close()
			if isUnique(err) {
				return fmt.Errorf("audit record %d: %w", r.Seq, store.ErrAuditConflict)
			}
			return wrap(fmt.Sprintf("audit record %d", r.Seq), err)
		}
	}
	return wrap("audit append", res.Close())
}

// ReadAudit implements store.AuditLog.
func (s *Store) ReadAudit(ctx context.Context, from uint64) iter.Seq2[*store.AuditRecord, error] {
	return func(yield func(*store.AuditRecord, error) bool) {
		if from > math.MaxInt64 {
			return
		}
		next := int64(from)
		for {
			page, err := queryAll(ctx, s.pool, "audit records", scanAudit,
				`SELECT `+auditCols+` FROM audit_records WHERE seq >= $1 ORDER BY seq LIMIT $2`, next, auditPage)
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

// LastAudit implements store.AuditLog.
func (s *Store) LastAudit(ctx context.Context) (*store.AuditRecord, error) {
	a, err := scanAudit(s.pool.QueryRow(ctx, `SELECT `+auditCols+` FROM audit_records ORDER BY seq DESC LIMIT 1`))
	if err != nil {
		return nil, wrap("last audit record", err)
	}
	return a, nil
}

// PutAuditCheckpoint implements store.AuditLog.
func (s *Store) PutAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	if c.Seq > math.MaxInt64 {
		return fmt.Errorf("audit checkpoint seq %d out of range", c.Seq)
	}
	sig := c.Signature
	if sig == nil {
		sig = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, signature, key_id, time) VALUES ($1, $2, $3, $4, $5)`,
		int64(c.Seq), c.Hash, sig, c.KeyID, ts(c.Time))
	return wrap(fmt.Sprintf("audit checkpoint %d", c.Seq), err)
}

// ListAuditCheckpoints implements store.AuditLog.
func (s *Store) ListAuditCheckpoints(ctx context.Context) ([]*store.AuditCheckpoint, error) {
	return queryAll(ctx, s.pool, "audit checkpoints", func(r pgx.Row) (*store.AuditCheckpoint, error) {
		var c store.AuditCheckpoint
		var seq, t int64
		if err := r.Scan(&seq, &c.Hash, &c.Signature, &c.KeyID, &t); err != nil {
			return nil, err
		}
		if seq < 0 {
			return nil, fmt.Errorf("audit checkpoint with negative seq %d", seq)
		}
		c.Seq, c.Time = uint64(seq), fromTS(t)
		return &c, nil
	}, `SELECT seq, hash, signature, key_id, time FROM audit_checkpoints ORDER BY seq`)
}
