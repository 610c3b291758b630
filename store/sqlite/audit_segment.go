package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mcpgate/mcpgate/store"
)

// Bounds of the audit segment file. The segment is the fast path of
// AppendAuditWritten: a batch of records is one write(2) to it, and a
// background step copies the records into the audit_records table in
// large transactions and empties the segment.
const (
	// SegmentSuffix is appended to the database path to name its audit
	// segment file (mcpgate.db-audit.seg).
	SegmentSuffix = "-audit.seg"
	// DefaultAuditCompactInterval is how long at most a record stays in
	// the segment before it is copied into the database (when the
	// database accepts writes).
	DefaultAuditCompactInterval = time.Second
	// DefaultAuditCompactBytes starts a copy at once when the segment
	// holds that much.
	DefaultAuditCompactBytes = 1 << 20
	// DefaultAuditSegmentMax bounds the segment: an append that would
	// make it larger fails (the copy into the database has been failing).
	DefaultAuditSegmentMax = 64 << 20
)

// segment is a database's audit segment file. Every process that appends
// audit records to the database takes the file's lock (flock) around the
// append, whether it writes to the segment or to the table, so that the
// chain head is the same for all: the last record of the segment, or the
// last of the table when the segment is empty.
type segment struct {
	path     string
	db       *sql.DB
	logger   *slog.Logger
	maxBytes int64
	interval time.Duration
	urgentAt int64

	mu     sync.Mutex // held with the file lock; guards what follows
	f      *os.File
	hdr    []byte // the file's header, mapped shared
	held   bool   // the file lock is held (in use, or lingering)
	linger time.Duration
	idle   *time.Timer // releases the lingering file lock
	closed bool
	// The writer's view of the file, valid while its epoch and size are
	// these: the chain head (nil for an empty chain).
	known bool
	epoch uint64
	size  int64
	head  *store.AuditRecord
	buf   []byte

	syncs  atomic.Uint64 // fsyncs of the segment (SyncAudit)
	kick   chan struct{} // records were appended: copy them soon
	urgent chan struct{} // the segment is large: copy now
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once // close
	cerr   error     // what close returned
}

// errSegmentClosed reports a use of the segment after Store.Close.
var errSegmentClosed = errors.New("sqlite: audit segment closed")

// openSegment opens (creating) the segment file at path, recovers into
// the database any records it holds (a process appending to it was
// killed, or closed without copying them) and starts the copier.
func openSegment(path string, db *sql.DB) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	g := &segment{path: path, db: db, logger: slog.Default(), f: f,
		maxBytes: DefaultAuditSegmentMax, interval: DefaultAuditCompactInterval, urgentAt: DefaultAuditCompactBytes,
		kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		linger: DefaultAuditLockLinger}
	g.idle = time.AfterFunc(time.Hour, g.releaseIdle)
	g.idle.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.lock(); err != nil {
		f.Close()
		return nil, err
	}
	err = g.refresh(ctx)
	if err == nil && g.size > segHeaderLen {
		// Not fatal: the records stay readable in the segment and the
		// next copy retries.
		if ferr := g.flushLocked(ctx, nil, nil); ferr != nil {
			g.logger.Warn("sqlite: audit records left in the segment file, not yet copied into the database", "path", path, "error", ferr)
		}
	}
	g.unlock()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit segment %s: %w", path, err)
	}
	go g.copier()
	return g, nil
}

// DefaultAuditLockLinger is how long a process keeps the segment's file
// lock after its last use when no other process asked for it: a busy
// writer takes it once, not once per append.
const DefaultAuditLockLinger = time.Millisecond

// lock takes the segment's mutex and its file lock. The file lock may
// still be held from a recent use (it lingers: see unlock).
func (g *segment) lock() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errSegmentClosed
	}
	if g.held {
		return nil
	}
	if err := g.acquire(); err != nil {
		g.mu.Unlock()
		return fmt.Errorf("audit segment lock: %w", err)
	}
	g.held = true
	return nil
}

// acquire takes the file lock. When another process holds it, the
// waiters count in the shared header tells that process to give it up
// at the end of its current use instead of keeping it.
func (g *segment) acquire() error {
	if g.hdr == nil {
		return flock(g.f, true)
	}
	ok, err := tryFlock(g.f)
	if ok || err != nil {
		return err
	}
	w := g.waiters()
	atomic.AddUint32(w, 1)
	err = flock(g.f, true)
	atomic.AddUint32(w, ^uint32(0))
	return err
}

// waiters returns the waiters count in the mapped header.
func (g *segment) waiters() *uint32 {
	return (*uint32)(unsafe.Pointer(&g.hdr[segWaitersOff]))
}

// unlock ends a use of the segment. The file lock is kept for
// DefaultAuditLockLinger more, unless another process waits for it: then
// it is released at once. (A process killed while waiting leaves the
// count up: locks are then released after every use, as without
// lingering.)
func (g *segment) unlock() {
	if g.hdr != nil && !g.closed && atomic.LoadUint32(g.waiters()) == 0 {
		g.idle.Reset(g.linger)
	} else {
		g.release()
	}
	g.mu.Unlock()
}

// release gives the file lock up (under the mutex).
func (g *segment) release() {
	if !g.held {
		return
	}
	g.held = false
	if err := flock(g.f, false); err != nil {
		g.logger.Error("sqlite: audit segment unlock", "error", err)
	}
}

// releaseIdle releases the file lock when it lingered unused.
func (g *segment) releaseIdle() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.release()
}

// refresh brings the writer's view up to date (under the lock): when
// the epoch or the end in the header is not the one last seen, another
// writer changed the file, and it is read again. A new file gets its
// header. Bytes past the last valid frame (a write cut short by a power
// loss, or made by a process killed before it updated the end: never
// acknowledged) are dropped, with a logged note.
func (g *segment) refresh(ctx context.Context) error {
	if g.hdr == nil {
		if err := g.mapHeader(); err != nil {
			return err
		}
	}
	epoch, end := g.header()
	if g.known && epoch == g.epoch && end == g.size {
		return nil
	}
	g.known = false
	fi, err := g.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < segHeaderLen {
		// Cut by something else than a writer: the mapped header is
		// beyond the end of the file.
		return fmt.Errorf("audit segment %s: %d bytes, shorter than its header", g.path, size)
	}
	recs, valid, err := g.read(segHeaderLen, min(max(end, segHeaderLen), size))
	if err != nil {
		return err
	}
	if valid < size {
		g.logger.Warn("sqlite: dropping the end of the audit segment that holds no acknowledged record (torn or unfinished write)",
			"path", g.path, "offset", valid, "bytes", size-valid, "end", end)
		if err := g.f.Truncate(valid); err != nil {
			return err
		}
	}
	g.setHeader(epoch, valid)
	if len(recs) > 0 {
		last := recs[len(recs)-1]
		g.head = &store.AuditRecord{Seq: last.Seq, Hash: last.Hash}
	} else if g.head, err = auditHead(g.db.QueryRowContext(ctx, selectAuditHead)); err != nil {
		return err
	}
	g.known, g.epoch, g.size = true, epoch, valid
	return nil
}

// mapHeader writes the header of a new (empty) file, checks it and maps
// it into memory.
func (g *segment) mapHeader() error {
	fi, err := g.f.Stat()
	if err != nil {
		return err
	}
	switch n := fi.Size(); {
	case n == 0:
		hdr := make([]byte, segHeaderLen)
		// The waiters count (at segWaitersOff) starts at 0.
		copy(hdr, segMagic)
		binary.LittleEndian.PutUint64(hdr[8:], 1)
		binary.LittleEndian.PutUint64(hdr[16:], segHeaderLen)
		if _, err := g.f.WriteAt(hdr, 0); err != nil {
			return err
		}
	case n < segHeaderLen:
		return fmt.Errorf("audit segment %s: %d bytes, shorter than its header", g.path, n)
	}
	hdr, err := mapHeader(g.f, segHeaderLen)
	if err != nil {
		return err
	}
	if string(hdr[:8]) != segMagic {
		unmapHeader(hdr)
		return fmt.Errorf("audit segment %s: not an audit segment file", g.path)
	}
	g.hdr = hdr
	return nil
}

// header returns the epoch and the end in the mapped header.
func (g *segment) header() (epoch uint64, end int64) {
	e := binary.LittleEndian.Uint64(g.hdr[16:])
	if e > 1<<62 {
		e = 1 << 62
	}
	return binary.LittleEndian.Uint64(g.hdr[8:]), int64(e)
}

// setHeader stores the epoch and the end in the mapped header.
func (g *segment) setHeader(epoch uint64, end int64) {
	binary.LittleEndian.PutUint64(g.hdr[8:], epoch)
	binary.LittleEndian.PutUint64(g.hdr[16:], uint64(end))
}

// read decodes the frames in [from, to) of the file. valid is the end
// of the valid frames (to unless the end is torn).
func (g *segment) read(from, to int64) (recs []*store.AuditRecord, valid int64, err error) {
	if to <= from {
		return nil, from, nil
	}
	if to-from > g.maxBytes+segHeaderLen {
		return nil, from, fmt.Errorf("audit segment %s: %d bytes, more than the %d allowed", g.path, to-from, g.maxBytes)
	}
	data := make([]byte, to-from)
	if _, err := g.f.ReadAt(data, from); err != nil {
		return nil, from, err
	}
	recs, n, _ := decodeFrames(data)
	return recs, from + int64(n), nil
}

// append chains recs to the head (chain as in store.AuditChainer) and
// writes them to the segment in one write. It returns once the write is
// done: the records are in the kernel's page cache.
func (g *segment) append(ctx context.Context, recs []*store.AuditRecord, chain func(*store.AuditRecord) error) error {
	if err := g.lock(); err != nil {
		return err
	}
	defer g.unlock()
	if err := g.refresh(ctx); err != nil {
		return err
	}
	if err := g.link(recs, chain); err != nil {
		return err
	}
	buf := g.buf[:0]
	for _, r := range recs {
		if r.Seq > 1<<63-1 {
			return fmt.Errorf("audit record seq %d out of range", r.Seq)
		}
		buf = appendFrame(buf, r)
	}
	if cap(buf) <= 1<<20 {
		g.buf = buf
	}
	if g.size+int64(len(buf)) > g.maxBytes+segHeaderLen {
		return fmt.Errorf("audit segment %s is full (%d bytes): its records are not being copied into the database", g.path, g.size)
	}
	if _, err := g.f.WriteAt(buf, g.size); err != nil {
		g.known = false
		if terr := g.f.Truncate(g.size); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("audit segment write: %w", err)
	}
	g.size += int64(len(buf))
	g.setHeader(g.epoch, g.size)
	last := recs[len(recs)-1]
	g.head = &store.AuditRecord{Seq: last.Seq, Hash: last.Hash}
	notify(g.kick)
	if g.size >= g.urgentAt {
		notify(g.urgent)
	}
	return nil
}

// notify sends on c without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// link calls chain with a copy of the head and checks that recs continue
// it.
func (g *segment) link(recs []*store.AuditRecord, chain func(*store.AuditRecord) error) error {
	if chain != nil {
		var head *store.AuditRecord
		if g.head != nil {
			head = &store.AuditRecord{Seq: g.head.Seq, Hash: g.head.Hash}
		}
		if err := chain(head); err != nil {
			return err
		}
	}
	return store.CheckAuditAppend(g.head, recs)
}

// appendDirect appends recs to the table in one synchronous transaction,
// after the segment's records (AppendAuditChained): under the lock, the
// segment is copied and emptied in the same transaction.
func (g *segment) appendDirect(ctx context.Context, recs []*store.AuditRecord, chain func(*store.AuditRecord) error) error {
	if err := g.lock(); err != nil {
		return err
	}
	defer g.unlock()
	if err := g.refresh(ctx); err != nil {
		return err
	}
	return g.flushLocked(ctx, recs, chain)
}

// flushLocked copies the segment's records into the table, then appends
// extra (chained by chain when not nil), in one transaction, and empties
// the segment, changing its epoch. The caller holds the lock and has
// refreshed the view.
func (g *segment) flushLocked(ctx context.Context, extra []*store.AuditRecord, chain func(*store.AuditRecord) error) error {
	return g.flushFrom(ctx, segHeaderLen, extra, chain)
}

// flushFrom is flushLocked when the records before offset from are
// already in the table.
func (g *segment) flushFrom(ctx context.Context, from int64, extra []*store.AuditRecord, chain func(*store.AuditRecord) error) error {
	recs, _, err := g.read(from, g.size)
	if err != nil {
		return err
	}
	if len(recs) == 0 && len(extra) == 0 {
		if g.size > segHeaderLen {
			return g.reset()
		}
		return nil
	}
	err = g.insert(ctx, recs, func(stmt *sql.Stmt, head *store.AuditRecord) error {
		if len(extra) == 0 {
			return nil
		}
		g.head = head
		if err := g.link(extra, chain); err != nil {
			return err
		}
		for _, r := range extra {
			if err := insertRecord(ctx, stmt, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		g.known = false
		return err
	}
	if len(extra) > 0 {
		last := extra[len(extra)-1]
		g.head = &store.AuditRecord{Seq: last.Seq, Hash: last.Hash}
	}
	return g.reset()
}

// reset empties the segment (its records are in the table) and moves
// its epoch on, so that every writer reads the head again.
func (g *segment) reset() error {
	g.known = false
	g.setHeader(g.epoch+1, segHeaderLen)
	if err := g.f.Truncate(segHeaderLen); err != nil {
		return fmt.Errorf("audit segment %s: %w", g.path, err)
	}
	g.known, g.epoch, g.size = true, g.epoch+1, segHeaderLen
	return nil
}

// insert stores recs in the table in one transaction, skipping those
// already there (a copy that stopped between its commit and emptying the
// segment, or another process's copy), then runs more in the same
// transaction with the insert statement and the chain head after recs.
// The transaction is synchronous: durable on return.
func (g *segment) insert(ctx context.Context, recs []*store.AuditRecord, more func(*sql.Stmt, *store.AuditRecord) error) error {
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("audit copy", err)
	}
	defer tx.Rollback()
	last, err := auditHead(tx.QueryRowContext(ctx, selectAuditHead))
	if err != nil {
		return err
	}
	recs, err = skipStored(last, recs)
	if err != nil {
		return err
	}
	if err := store.CheckAuditAppend(last, recs); err != nil {
		return fmt.Errorf("audit segment does not continue the table: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, insertAudit)
	if err != nil {
		return wrap("audit copy", err)
	}
	defer stmt.Close()
	// The rows are inserted without ctx's deadline (the transaction
	// still ends with it): with one, the driver starts a goroutine per
	// statement to interrupt it.
	ctx = context.WithoutCancel(ctx)
	for _, r := range recs {
		if err := insertRecord(ctx, stmt, r); err != nil {
			return err
		}
	}
	if more != nil {
		if n := len(recs); n > 0 {
			last = &store.AuditRecord{Seq: recs[n-1].Seq, Hash: recs[n-1].Hash}
		}
		if err := more(stmt, last); err != nil {
			return err
		}
	}
	return wrap("audit copy", tx.Commit())
}

// skipStored drops from recs the records the table already has (Seq up
// to last's); the one with last's Seq must have its Hash.
func skipStored(last *store.AuditRecord, recs []*store.AuditRecord) ([]*store.AuditRecord, error) {
	if last == nil {
		return recs, nil
	}
	i := 0
	for i < len(recs) && recs[i].Seq <= last.Seq {
		if recs[i].Seq == last.Seq && recs[i].Hash != last.Hash {
			return nil, fmt.Errorf("audit record %d in the segment has hash %.12s, the table's has %.12s: %w", last.Seq, recs[i].Hash, last.Hash, store.ErrAuditConflict)
		}
		i++
	}
	return recs[i:], nil
}

// compact copies the segment's records into the table. The bulk is
// copied without the lock, so appends go on meanwhile; then, under the
// lock, what was appended since is copied too and the segment emptied.
func (g *segment) compact(ctx context.Context) error {
	if err := g.lock(); err != nil {
		return err
	}
	err := g.refresh(ctx)
	epoch, size := g.epoch, g.size
	var recs []*store.AuditRecord
	if err == nil {
		recs, _, err = g.read(segHeaderLen, size)
	}
	g.unlock()
	if err != nil || len(recs) == 0 {
		return err
	}
	if err := g.insert(ctx, recs, nil); err != nil {
		return err
	}
	if err := g.lock(); err != nil {
		return err
	}
	defer g.unlock()
	if err := g.refresh(ctx); err != nil {
		return err
	}
	if g.epoch != epoch {
		return nil // another writer emptied it meanwhile
	}
	// Within an epoch the segment only grows: what is left to copy is
	// what was appended since it was read.
	return g.flushFrom(ctx, size, nil, nil)
}

// snapshot returns the records in the segment now.
func (g *segment) snapshot(ctx context.Context) ([]*store.AuditRecord, error) {
	if err := g.lock(); err != nil {
		return nil, err
	}
	defer g.unlock()
	if err := g.refresh(ctx); err != nil {
		return nil, err
	}
	recs, _, err := g.read(segHeaderLen, g.size)
	return recs, err
}

// sync fsyncs the segment file.
func (g *segment) sync() error {
	g.syncs.Add(1)
	return g.f.Sync()
}

// copier copies appended records into the table within interval of
// their append, at once when the segment is large.
func (g *segment) copier() {
	defer close(g.done)
	for {
		select {
		case <-g.kick:
		case <-g.urgent:
		case <-g.stop:
			return
		}
		t := time.NewTimer(g.interval)
		select {
		case <-t.C:
		case <-g.urgent:
			t.Stop()
		case <-g.stop:
			t.Stop()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := g.compact(ctx); err != nil {
			g.logger.Error("sqlite: copying audit records from the segment into the database", "path", g.path, "error", err)
		}
		cancel()
	}
}

// close stops the copier, copies what is left and closes the file. Only
// the first call does it; later ones return what it returned.
func (g *segment) close() error {
	g.once.Do(func() { g.cerr = g.closeOnce() })
	return g.cerr
}

func (g *segment) closeOnce() error {
	close(g.stop)
	<-g.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if err = g.lock(); err == nil {
		if err = g.refresh(ctx); err == nil {
			err = g.flushLocked(ctx, nil, nil)
		}
		if err != nil {
			g.logger.Warn("sqlite: audit records left in the segment file at close", "path", g.path, "error", err)
			err = nil // they are recovered at the next open
		}
		g.closed = true
		g.unlock() // closed: releases the file lock
	}
	g.idle.Stop()
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	if g.hdr != nil {
		err = errors.Join(err, unmapHeader(g.hdr))
		g.hdr = nil
	}
	return errors.Join(err, g.f.Close())
}
