package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"math"
	"os"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/store"
)

var (
	_ store.AuditLog     = (*Store)(nil)
	_ store.AuditChainer = (*Store)(nil)
	_ store.AuditSyncer  = (*Store)(nil)
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
// commit. A nil chain stores recs as given, as AppendAudit does. The
// commit is synchronous (durable on return); only Seq and Hash of the
// head given to chain are set. With a segment file (audit_segment.go),
// the segment's lock is held too, and the records waiting in the segment
// are copied into the table in the same transaction, first: the head is
// the chain's last record, wherever it was.
func (s *Store) AppendAuditChained(ctx context.Context, recs []*store.AuditRecord, chain func(last *store.AuditRecord) error) error {
	if s.seg != nil {
		if len(recs) == 0 {
			return nil
		}
		return s.seg.appendDirect(ctx, recs, chain)
	}
	return appendAudit(ctx, s.db, nil, recs, chain)
}

// AppendAuditWritten implements store.AuditSyncer. With a segment file
// (on Unix systems) it chains recs to the head and writes them to the
// segment in one write(2), under the segment's file lock, and returns:
// the records are in the kernel's page cache, so they survive the
// process being killed; SyncAudit makes them survive a power loss. The
// store copies them into the table in the background (CompactAudit).
// Without one, it appends as AppendAuditChained does, on the audit
// connection (synchronous=NORMAL): the transaction is then in the WAL
// file when it returns. In memory it is AppendAuditChained.
func (s *Store) AppendAuditWritten(ctx context.Context, recs []*store.AuditRecord, chain func(last *store.AuditRecord) error) error {
	switch {
	case len(recs) == 0:
		return nil
	case s.seg != nil:
		return s.seg.append(ctx, recs, chain)
	case s.audit == nil:
		return s.AppendAuditChained(ctx, recs, chain)
	}
	return appendAudit(ctx, s.audit, &s.auditStmts, recs, chain)
}

// SyncAudit implements store.AuditSyncer. With a segment file it
// fsyncs the segment (the records copied out of it are in the table,
// committed synchronously). Without one it fsyncs the write-ahead log,
// which holds every transaction committed since the last WAL checkpoint
// (a checkpoint syncs what it copies into the database file); when there
// is no WAL file (every connection closed cleanly) it syncs the database
// file. In memory it does nothing.
func (s *Store) SyncAudit(ctx context.Context) error {
	if s.wal == "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.seg != nil {
		if err := s.seg.sync(); err != nil {
			return fmt.Errorf("sqlite: audit sync: %w", err)
		}
		return nil
	}
	err := syncFile(s.wal)
	if errors.Is(err, fs.ErrNotExist) {
		err = syncFile(strings.TrimSuffix(s.wal, "-wal"))
	}
	if err != nil {
		return fmt.Errorf("sqlite: audit sync: %w", err)
	}
	return nil
}

// syncFile fsyncs the file at path. The file is opened for each sync: the
// WAL may be deleted and created again by other processes.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// auditStmts are the audit writer's statements, prepared once on its
// connection.
type auditStmts struct {
	head, insert *sql.Stmt
}

// prepare prepares the statements on db.
func (ps *auditStmts) prepare(db *sql.DB) error {
	var err error
	if ps.head, err = db.Prepare(selectAuditHead); err != nil {
		return err
	}
	if ps.insert, err = db.Prepare(insertAudit); err != nil {
		ps.head.Close()
		return err
	}
	return nil
}

// close closes the statements.
func (ps *auditStmts) close() error {
	return errors.Join(ps.head.Close(), ps.insert.Close())
}

const selectAuditHead = `SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1`

const insertAudit = `INSERT INTO audit_records (` + auditCols + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

// appendAudit stores recs in one IMMEDIATE transaction on db, after
// chain has linked them to the head read inside it. ps, if not nil, are
// the statements prepared on db.
func appendAudit(ctx context.Context, db *sql.DB, ps *auditStmts, recs []*store.AuditRecord, chain func(last *store.AuditRecord) error) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("audit append", err)
	}
	defer tx.Rollback()
	var headRow *sql.Row
	if ps != nil {
		headRow = tx.StmtContext(ctx, ps.head).QueryRowContext(ctx)
	} else {
		headRow = tx.QueryRowContext(ctx, selectAuditHead)
	}
	last, err := auditHead(headRow)
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
	var stmt *sql.Stmt
	if ps != nil {
		stmt = tx.StmtContext(ctx, ps.insert)
	} else if stmt, err = tx.PrepareContext(ctx, insertAudit); err != nil {
		return wrap("audit append", err)
	}
	defer stmt.Close()
	for _, r := range recs {
		if err := insertRecord(ctx, stmt, r); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap("audit append", err)
	}
	return nil
}

// auditHead scans the Seq and Hash of the last record (nil for an empty
// log) from row (selectAuditHead: a seek to the end of the table's
// B-tree, without the other columns).
func auditHead(row *sql.Row) (*store.AuditRecord, error) {
	var seq int64
	var hash string
	err := row.Scan(&seq, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, wrap("audit chain head", err)
	case seq < 0:
		return nil, fmt.Errorf("audit record with negative seq %d", seq)
	}
	return &store.AuditRecord{Seq: uint64(seq), Hash: hash}, nil
}

// insertRecord inserts r with stmt (insertAudit).
func insertRecord(ctx context.Context, stmt *sql.Stmt, r *store.AuditRecord) error {
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
	return nil
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// ReadAudit implements store.AuditLog. With a segment file it reads
// through: the table's records, then the segment's that follow them.
func (s *Store) ReadAudit(ctx context.Context, from uint64) iter.Seq2[*store.AuditRecord, error] {
	return func(yield func(*store.AuditRecord, error) bool) {
		if from > math.MaxInt64 {
			return
		}
		next, ok := s.readTable(ctx, int64(from), math.MaxInt64, yield)
		if !ok || s.seg == nil {
			return
		}
		seg, err := s.seg.snapshot(ctx)
		if err != nil {
			yield(nil, err)
			return
		}
		if len(seg) == 0 || int64(seg[0].Seq) > next {
			// Records copied from the segment into the table since the
			// table was read (all of them when the copy emptied the
			// segment): the copy commits before it empties the segment,
			// so they are in the table now.
			to := int64(math.MaxInt64)
			if len(seg) > 0 {
				to = int64(seg[0].Seq)
			}
			if next, ok = s.readTable(ctx, next, to, yield); !ok {
				return
			}
		}
		for _, r := range seg {
			if int64(r.Seq) >= next && !yield(r, nil) {
				return
			}
		}
	}
}

// readTable yields the table's records with from <= Seq < to, and
// returns the Seq after the last one yielded (from if none) and whether
// to go on.
func (s *Store) readTable(ctx context.Context, from, to int64, yield func(*store.AuditRecord, error) bool) (int64, bool) {
	next := from
	for {
		page, err := s.readAuditPage(ctx, next)
		if err != nil {
			yield(nil, err)
			return next, false
		}
		for _, r := range page {
			if int64(r.Seq) >= to {
				return next, true
			}
			if !yield(r, nil) {
				return next, false
			}
			next = int64(r.Seq) + 1
		}
		if len(page) < auditPage {
			return next, true
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

// LastAudit implements store.AuditLog: the segment file's last record,
// or the table's when the segment is empty.
func (s *Store) LastAudit(ctx context.Context) (*store.AuditRecord, error) {
	if s.seg != nil {
		seg, err := s.seg.snapshot(ctx)
		if err != nil {
			return nil, err
		}
		if n := len(seg); n > 0 {
			return seg[n-1], nil
		}
	}
	return lastAudit(ctx, s.db)
}

// openSegment opens the audit segment file of the database at path
// (SegmentSuffix), where the audit writer's records go first.
func (s *Store) openSegment(path string) error {
	if !segmentSupported {
		return nil
	}
	g, err := openSegment(path+SegmentSuffix, s.db)
	if err != nil {
		return err
	}
	s.seg = g
	return nil
}

// CompactAudit copies the audit records in the segment file into the
// audit_records table and empties the segment. The store does it on its
// own within DefaultAuditCompactInterval of an append, at Open and at
// Close; readers never need it (ReadAudit reads through).
func (s *Store) CompactAudit(ctx context.Context) error {
	if s.seg == nil {
		return nil
	}
	return s.seg.compact(ctx)
}

// AuditSegmentSyncs returns how many times SyncAudit fsync'd the audit
// segment file since Open (PutAuditCheckpoint's syncs are not counted).
func (s *Store) AuditSegmentSyncs() uint64 {
	if s.seg == nil {
		return 0
	}
	return s.seg.syncs.Load()
}

// PutAuditCheckpoint implements store.AuditLog.
func (s *Store) PutAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	if c.Seq > math.MaxInt64 {
		return fmt.Errorf("audit checkpoint seq %d out of range", c.Seq)
	}
	if s.seg != nil {
		// The records a checkpoint covers may be in the segment file,
		// not yet synced (audit.SyncGroup, SyncOS): sync them first, so
		// that the checkpoint, committed synchronously, never survives
		// a power loss without them.
		if err := s.seg.f.Sync(); err != nil {
			return fmt.Errorf("audit checkpoint %d: syncing the segment: %w", c.Seq, err)
		}
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
