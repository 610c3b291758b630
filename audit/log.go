package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// Errors returned by Log.Append.
var (
	// ErrClosed reports an Append after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrNotStored reports that a record could not be stored (the audit
	// store is down or refused the write). Unless Options.FailOpen is set,
	// the caller must not carry out the audited action.
	ErrNotStored = errors.New("audit: record not stored")
)

// Defaults for Options fields left zero.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Minute
	DefaultMaxBatch           = 256
	DefaultBatchWindow        = time.Millisecond
	DefaultWriteTimeout       = 5 * time.Second
	DefaultGroupWindow        = 5 * time.Millisecond
)

// SyncPolicy says how often the records a Log has written reach stable
// storage. Whatever the policy, Append returns only once its record is
// committed and written to the operating system, so an acknowledged
// record survives the process being killed (SIGKILL, a crash); the policy
// decides what a power loss or a kernel crash can take. It applies to
// stores that implement store.AuditSyncer (SQLite on a file); other stores
// are durable on every commit.
type SyncPolicy string

// Sync policies.
const (
	// SyncAlways syncs after every commit, before Append returns: nothing
	// acknowledged is lost on power loss. Concurrent appends share one
	// commit and one sync.
	SyncAlways SyncPolicy = "always"
	// SyncGroup (the default) syncs at most once per GroupWindow, when
	// records were written since the last sync: a power loss can take the
	// records acknowledged in the last GroupWindow plus one sync's time.
	SyncGroup SyncPolicy = "group"
	// SyncOS never syncs for appends: the operating system writes the
	// pages back on its own schedule (Linux: within about 30 s by
	// default), and SQLite syncs when it checkpoints its write-ahead log.
	// Close syncs.
	SyncOS SyncPolicy = "os"
)

// ParseSyncPolicy returns the policy named s; "" is SyncGroup.
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch p := SyncPolicy(s); p {
	case "":
		return SyncGroup, nil
	case SyncAlways, SyncGroup, SyncOS:
		return p, nil
	}
	return "", fmt.Errorf("audit: unknown sync policy %q (want always, group or os)", s)
}

// Stats counts what a Log has done since New.
type Stats struct {
	// Records is the number of records stored.
	Records uint64
	// Commits is the number of store transactions that stored them.
	Commits uint64
	// Syncs is the number of explicit syncs (store.AuditSyncer.SyncAudit)
	// the Log made, and SyncTime the time they took in all.
	Syncs    uint64
	SyncTime time.Duration
	// Pending is the number of appends in progress now: handed to the
	// writer or waiting for it, and not yet stored.
	Pending int64
}

// Options configure a Log. The zero value (or nil) is usable: no
// checkpoints (no key), digests only, fail closed.
type Options struct {
	// KeyPath is the Ed25519 checkpoint signing key (PEM PKCS #8),
	// generated with mode 0600 on first use: the default key in the data
	// directory (DefaultKeyFile). Empty disables checkpoints, unless
	// SigningKeyFile, SigningCommand or Signer is set.
	KeyPath string
	// SigningKeyFile is an Ed25519 signing key kept outside the data
	// directory (PEM PKCS #8, mode 0600 or stricter). It must exist: it is
	// never generated. It replaces KeyPath.
	SigningKeyFile string
	// SigningCommand signs checkpoints by running a command (see
	// CommandSigner for the protocol); PublicKeyFile is then required.
	// It replaces KeyPath and excludes SigningKeyFile.
	SigningCommand []string
	// Signer signs checkpoints; it replaces KeyPath, SigningKeyFile and
	// SigningCommand.
	Signer Signer
	// PublicKeyFile is the checkpoint verification key (PEM PUBLIC KEY).
	// Every signature is checked with it before a checkpoint is stored;
	// New fails when the signing key does not match it.
	PublicKeyFile string
	// SigningTimeout bounds one signing (0: DefaultSigningTimeout). A
	// signing that fails or times out is logged and recorded in the chain
	// (ActionCheckpointFailed); appends go on, uncovered, until a later
	// checkpoint succeeds.
	SigningTimeout time.Duration
	// CheckpointFile, if set, is a file every checkpoint is appended to
	// (one JSON line each, opened with O_APPEND, fsync'd), to ship
	// elsewhere and check with VerifyExternal.
	CheckpointFile string
	// CheckpointEvery signs a checkpoint after that many records
	// (0: DefaultCheckpointEvery; negative: never by count).
	CheckpointEvery int
	// CheckpointInterval signs a checkpoint at that interval when records
	// were added since the last one (0: DefaultCheckpointInterval;
	// negative: never by time). Close always signs a final checkpoint.
	CheckpointInterval time.Duration
	// KeepPayloads stores (and exports) the arguments and results
	// themselves, not only their digests.
	KeepPayloads bool
	// FailOpen makes Append succeed (logging an error) when the record
	// cannot be stored. By default Append fails with ErrNotStored and the
	// gateway refuses the action (fail closed).
	FailOpen bool
	// Exporters receive every stored record, asynchronously; those that
	// implement CheckpointSink receive every checkpoint too. The Log owns
	// them: Close closes them.
	Exporters []Exporter
	// Logger receives operational messages (never payloads). Nil means
	// slog.Default().
	Logger *slog.Logger
	// Clock gives record and checkpoint times; it is called concurrently.
	// Nil means time.Now.
	Clock func() time.Time
	// MaxBatch bounds the records committed in one transaction
	// (0: DefaultMaxBatch).
	MaxBatch int
	// BatchWindow is how long at most the writer waits for more records
	// to join a batch once it has one, when recent batches held more than
	// one record (appends are concurrent); it stops waiting as soon as the
	// batch is as large as recent ones. A lone caller is never delayed:
	// its batch is whatever arrived while the previous transaction was
	// committing. 0 means DefaultBatchWindow; negative never waits.
	BatchWindow time.Duration
	// WriteTimeout bounds one store transaction (0: DefaultWriteTimeout).
	WriteTimeout time.Duration
	// Sync is the sync policy ("": SyncGroup).
	Sync SyncPolicy
	// GroupWindow is, with SyncGroup, the shortest time between two syncs
	// and the longest a written record waits for its sync
	// (0: DefaultGroupWindow).
	GroupWindow time.Duration
	// ExportQueue bounds the batches waiting for each exporter
	// (0: 1024); when full, batches are dropped for that exporter and
	// the drop is logged.
	ExportQueue int
	// ExportAttempts bounds the tries of one export (0: 3).
	ExportAttempts int
}

// Log appends records to the audit chain. It is safe for concurrent use;
// one writer goroutine commits concurrent appends in groups, and a lone
// append (none other in progress, none recently) is written by its
// caller directly.
type Log struct {
	st     store.AuditLog
	opts   Options
	logger *slog.Logger
	signer Signer
	pub    ed25519.PublicKey
	keyID  string
	cpFile *JSONLExporter
	cpDone chan cpResult

	reqs    chan *request
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
	exp     *dispatcher

	// Syncing (store.AuditSyncer), for SyncGroup by the syncer goroutine.
	syncer     store.AuditSyncer // nil: the store is durable on commit
	syncKick   chan struct{}     // a record was written since the last sync
	syncStop   chan struct{}
	syncDone   chan struct{}
	syncFailed atomic.Bool // the last sync failed: appends sync first

	records, commits, syncs atomic.Uint64
	syncNanos               atomic.Int64 // time spent in syncs
	pending                 atomic.Int64 // appends not yet stored (Stats.Pending)

	// wmu guards what follows: held by the writer goroutine while it
	// handles an event, or by an appender that writes its record itself
	// (Append's fast path, when it is the only append in progress). A
	// channel, not a sync.Mutex, so that a goroutine waiting for it is
	// durably blocked in a testing/synctest bubble.
	wmu                     chanMutex
	wclosed                 bool // the writer has stopped
	lastSeq, lastCheckpoint uint64
	lastHash                string
	stale                   bool
	peak                    int       // recent batch size, decaying
	signing                 bool      // a checkpoint is being signed
	cpWanted                bool      // a checkpoint was due while signing
	failing                 bool      // the last signing failed
	retryAt                 time.Time // no count-triggered checkpoint before
	failBackoff             time.Duration
	failRecorded            time.Time // when a failure was last recorded in the chain
}

// chanMutex is a mutex made of a channel with a buffer of one.
type chanMutex chan struct{}

func (m chanMutex) Lock()   { m <- struct{}{} }
func (m chanMutex) Unlock() { <-m }

// TryLock takes the mutex if it is free, without waiting.
func (m chanMutex) TryLock() bool {
	select {
	case m <- struct{}{}:
		return true
	default:
		return false
	}
}

// ActionCheckpointFailed is the action of the record the Log appends when
// a checkpoint could not be signed or stored.
const ActionCheckpointFailed = "audit.checkpoint_failed"

// ClientAuditLog is the Client of the records the Log writes about itself.
const ClientAuditLog = "mcpgate-audit"

type cpResult struct {
	c   *Checkpoint
	err error
}

type request struct {
	rec     *store.AuditRecord
	content contentDigest
	done    chan error
}

// New opens the log on st: it reads the tail of the stored chain, loads
// or creates the checkpoint key and starts the writer. opts may be nil.
func New(st store.AuditLog, opts *Options) (*Log, error) {
	if st == nil {
		return nil, errors.New("audit: nil store")
	}
	l := &Log{st: st, reqs: make(chan *request), closing: make(chan struct{}), done: make(chan struct{}), wmu: make(chanMutex, 1)}
	if opts != nil {
		l.opts = *opts
	}
	o := &l.opts
	var err error
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.BatchWindow == 0 {
		o.BatchWindow = DefaultBatchWindow
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Sync, err = ParseSyncPolicy(string(o.Sync)); err != nil {
		return nil, err
	}
	if o.GroupWindow <= 0 {
		o.GroupWindow = DefaultGroupWindow
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	l.logger = o.Logger
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if o.SigningTimeout <= 0 {
		o.SigningTimeout = DefaultSigningTimeout
	}
	signer, err := o.newSigner()
	if err != nil {
		return nil, err
	}
	if signer != nil {
		l.signer, l.pub = signer, signer.PublicKey()
		l.keyID = KeyID(l.pub)
		l.cpDone = make(chan cpResult, 1)
	}
	if o.CheckpointFile != "" {
		l.cpFile = &JSONLExporter{path: o.CheckpointFile, what: "checkpoint file"}
		if err := l.cpFile.open(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.WriteTimeout)
	defer cancel()
	if err := l.reload(ctx); err != nil {
		l.closeFile()
		return nil, err
	}
	cps, err := st.ListAuditCheckpoints(ctx)
	if err != nil {
		l.closeFile()
		return nil, fmt.Errorf("audit: reading checkpoints: %w", err)
	}
	if n := len(cps); n > 0 {
		l.lastCheckpoint = cps[n-1].Seq
		if l.lastCheckpoint > l.lastSeq {
			l.logger.Warn("audit: a checkpoint covers records beyond the end of the stored log; run mcpgate audit verify",
				"checkpoint_seq", l.lastCheckpoint, "last_seq", l.lastSeq)
		}
	}
	l.exp = newDispatcher(o.Exporters, l.logger, o.ExportQueue, o.ExportAttempts)
	if sy, ok := st.(store.AuditSyncer); ok {
		l.syncer = sy
		if o.Sync == SyncGroup {
			l.syncKick, l.syncStop, l.syncDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
			go l.syncLoop()
		}
	}
	go l.run()
	return l, nil
}

// Stats returns what the Log has done since New.
func (l *Log) Stats() Stats {
	return Stats{Records: l.records.Load(), Commits: l.commits.Load(), Syncs: l.syncs.Load(),
		SyncTime: time.Duration(l.syncNanos.Load()), Pending: l.pending.Load()}
}

// syncLoop is the syncer goroutine of SyncGroup: once a record is written
// it waits GroupWindow, then syncs every record written so far. So syncs
// are at least GroupWindow apart, and a record waits at most GroupWindow
// and one sync for its sync.
func (l *Log) syncLoop() {
	defer close(l.syncDone)
	for {
		select {
		case <-l.syncKick:
		case <-l.syncStop:
			return
		}
		t := time.NewTimer(l.opts.GroupWindow)
		select {
		case <-t.C:
		case <-l.syncStop:
			t.Stop()
			return
		}
		if err := l.sync(); err != nil {
			l.logger.Error("audit: records written but not synced to disk; appends will sync first until a sync succeeds", "error", err)
		}
	}
}

// sync syncs the store (store.AuditSyncer) and notes whether it failed.
func (l *Log) sync() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.WriteTimeout)
	defer cancel()
	l.syncs.Add(1)
	start := time.Now()
	err := l.syncer.SyncAudit(ctx)
	l.syncNanos.Add(int64(time.Since(start)))
	l.syncFailed.Store(err != nil)
	return err
}

// written applies the sync policy after a commit by the writer: SyncAlways
// syncs now (the caller fails the batch if that fails), SyncGroup wakes
// the syncer, SyncOS does nothing.
func (l *Log) written() error {
	switch l.opts.Sync {
	case SyncAlways:
		return l.sync()
	case SyncGroup:
		select {
		case l.syncKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// newSigner returns the checkpoint signer the options ask for, or nil.
func (o *Options) newSigner() (Signer, error) {
	var want ed25519.PublicKey
	if o.PublicKeyFile != "" {
		k, err := LoadPublicKey(o.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		want = k
	}
	var s Signer
	var from string
	switch {
	case o.Signer != nil:
		s, from = o.Signer, "the signer"
	case len(o.SigningCommand) > 0:
		if o.SigningKeyFile != "" {
			return nil, errors.New("audit: set a signing key file or a signing command, not both")
		}
		if want == nil {
			return nil, errors.New("audit: a signing command needs a public key file to check its signatures")
		}
		return NewCommandSigner(o.SigningCommand, want)
	case o.SigningKeyFile != "":
		k, err := LoadKeySigner(o.SigningKeyFile)
		if err != nil {
			return nil, err
		}
		s, from = k, "signing key file "+o.SigningKeyFile
	case o.KeyPath != "":
		k, err := LoadOrCreateKey(o.KeyPath)
		if err != nil {
			return nil, err
		}
		s, from = NewKeySigner(k), "key file "+o.KeyPath
	default:
		return nil, nil
	}
	if want != nil && !want.Equal(s.PublicKey()) {
		return nil, fmt.Errorf("audit: %s has key id %s, but the public key file %s has key id %s", from, KeyID(s.PublicKey()), o.PublicKeyFile, KeyID(want))
	}
	return s, nil
}

// PublicKey returns the checkpoint verification key, or nil when
// checkpoints are disabled.
func (l *Log) PublicKey() ed25519.PublicKey {
	if l.signer == nil {
		return nil
	}
	return l.pub
}

// reload reads the tail of the stored chain.
func (l *Log) reload(ctx context.Context) error {
	last, err := l.st.LastAudit(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		l.lastSeq, l.lastHash = 0, ""
	case err != nil:
		return fmt.Errorf("audit: reading the chain tail: %w", err)
	default:
		l.lastSeq, l.lastHash = last.Seq, last.Hash
	}
	l.stale = false
	return nil
}

// Append adds r to the chain. It sets r.Time, r.ArgsDigest and
// r.ResultDigest (from r.Args and r.Result when set), and, once stored,
// r.Seq, r.PrevHash and r.Hash. When Append returns nil the record is
// committed to the store and written to the operating system, so it
// survives the process being killed; it is on stable storage at once with
// SyncAlways, within Options.GroupWindow with SyncGroup (see SyncPolicy).
// With Options.FailOpen, a record that could not be stored is logged and
// Append returns nil. A record whose Args or Result is not valid JSON (or has
// duplicate member names) is refused; invalid UTF-8 in the string fields
// is stored as U+FFFD.
//
// If ctx ends while the record is being committed, Append returns the
// context's error; the record may still be stored.
func (l *Log) Append(ctx context.Context, r *Record) error {
	if r == nil {
		return errors.New("audit: nil record")
	}
	r.Time = l.opts.Clock().UTC().Truncate(time.Microsecond)
	for _, p := range []struct {
		name   string
		v      []byte
		digest *string
	}{{"arguments", r.Args, &r.ArgsDigest}, {"result", r.Result, &r.ResultDigest}} {
		if len(p.v) == 0 {
			continue
		}
		d, err := Digest(p.v)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", p.name, err)
		}
		if *p.digest != "" && *p.digest != d {
			return fmt.Errorf("audit: %s digest %s given, but the %s digest to %s", p.name, *p.digest, p.name, d)
		}
		*p.digest = d
	}
	sr := toStore(r, l.opts.KeepPayloads)
	content, err := digestContent(sr)
	if err != nil {
		return err
	}
	req := &request{rec: sr, content: content, done: make(chan error, 1)}
	if l.pending.Add(1) == 1 && l.wmu.TryLock() {
		// The only append in progress, the writer idle and appends not
		// concurrent of late (the writer would not wait for company):
		// write the record here rather than hand it to the writer
		// goroutine and wait for it (two goroutine wake-ups).
		closed, alone := l.wclosed, l.opts.BatchWindow <= 0 || l.peak <= 1
		if !closed && alone {
			l.commit([]*request{req})
		}
		l.wmu.Unlock()
		if closed {
			l.pending.Add(-1)
			return ErrClosed
		}
		if alone {
			l.pending.Add(-1)
			if err := <-req.done; err != nil {
				return err
			}
			r.Seq, r.PrevHash, r.Hash = sr.Seq, sr.PrevHash, sr.Hash
			return nil
		}
	}
	defer l.pending.Add(-1)
	select {
	case l.reqs <- req:
	case <-l.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("audit: waiting for the record to be stored: %w", ctx.Err())
	}
	r.Seq, r.PrevHash, r.Hash = sr.Seq, sr.PrevHash, sr.Hash
	return nil
}

// Close stores the records being appended, signs a final checkpoint,
// flushes and closes the exporters. Appends after Close fail with
// ErrClosed. The store is not closed.
func (l *Log) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closing)
		<-l.done
		if l.syncStop != nil {
			close(l.syncStop)
			<-l.syncDone
		}
		if l.syncer != nil {
			if serr := l.sync(); serr != nil {
				err = fmt.Errorf("audit: final sync: %w", serr)
			}
		}
		err = errors.Join(err, l.exp.close(), l.closeFile())
	})
	return err
}

func (l *Log) closeFile() error {
	if l.cpFile == nil {
		return nil
	}
	return l.cpFile.Close()
}

// run is the writer goroutine.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.signer != nil && l.opts.CheckpointInterval > 0 {
		t := time.NewTicker(l.opts.CheckpointInterval)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*request, 0, l.opts.MaxBatch)
	for {
		select {
		case req := <-l.reqs:
			l.wmu.Lock()
			batch = l.collect(append(batch[:0], req))
			l.commit(batch)
			l.wmu.Unlock()
			clear(batch)
		case <-tick:
			l.wmu.Lock()
			l.checkpoint()
			l.wmu.Unlock()
		case res := <-l.cpDone:
			l.wmu.Lock()
			l.checkpointDone(res)
			l.wmu.Unlock()
		case <-l.closing:
			l.wmu.Lock()
			defer l.wmu.Unlock()
			l.wclosed = true
			for {
				batch = batch[:0]
			drain:
				for len(batch) < l.opts.MaxBatch {
					select {
					case req := <-l.reqs:
						batch = append(batch, req)
					default:
						break drain
					}
				}
				if len(batch) == 0 {
					break
				}
				l.commit(batch)
			}
			// The final checkpoint, after any being signed.
			l.waitSigning()
			l.cpWanted = false
			l.checkpoint()
			l.waitSigning()
			return
		}
	}
}

// collect adds to batch the requests already waiting and, when appends
// are concurrent, those arriving within BatchWindow, up to MaxBatch. It
// stops waiting early once the batch is as large as recent batches were
// (every regular caller has come back), so steady concurrent load is
// committed without idling.
func (l *Log) collect(batch []*request) []*request {
	var deadline <-chan time.Time
	defer func() {
		// peak follows the batch size up at once and down slowly (by
		// an eighth, at least one, per batch).
		l.peak = max(len(batch), l.peak-max(1, l.peak/8))
	}()
	for len(batch) < l.opts.MaxBatch {
		select {
		case req := <-l.reqs:
			batch = append(batch, req)
			continue
		default:
		}
		if l.opts.BatchWindow <= 0 || l.peak <= 1 || len(batch) >= l.peak {
			return batch
		}
		if deadline == nil {
			t := time.NewTimer(l.opts.BatchWindow)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case req := <-l.reqs:
			batch = append(batch, req)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// commit chains and stores batch in one store transaction and answers
// every request.
func (l *Log) commit(batch []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.WriteTimeout)
	defer cancel()
	recs := make([]*store.AuditRecord, len(batch))
	for i, req := range batch {
		recs[i] = req.rec
	}
	err := l.store(ctx, batch, recs)
	if err != nil {
		l.logger.Error("audit: records not stored", "count", len(batch), "fail_open", l.opts.FailOpen, "error", err)
		for _, req := range batch {
			req.rec.Seq, req.rec.PrevHash, req.rec.Hash = 0, "", ""
			if l.opts.FailOpen {
				req.done <- nil
			} else {
				req.done <- fmt.Errorf("%w: %w", ErrNotStored, err)
			}
		}
		if l.opts.FailOpen {
			l.export(recs)
		}
		return
	}
	l.records.Add(uint64(len(recs)))
	l.export(recs)
	for _, req := range batch {
		req.done <- nil
	}
	l.maybeCheckpoint()
}

// maybeCheckpoint starts a checkpoint when CheckpointEvery records were
// added since the last one, unless one is being signed (it is
// reconsidered when that one is done) or signing failed recently.
func (l *Log) maybeCheckpoint() {
	if l.signer != nil && !l.signing && l.opts.CheckpointEvery > 0 && l.lastSeq-l.lastCheckpoint >= uint64(l.opts.CheckpointEvery) && !time.Now().Before(l.retryAt) {
		l.checkpoint()
	}
}

// store chains recs (the records of batch) to the stored head and stores
// them in one transaction.
func (l *Log) store(ctx context.Context, batch []*request, recs []*store.AuditRecord) error {
	link := func(seq uint64, prev string) {
		for i, req := range batch {
			seq++
			recs[i].Seq, recs[i].PrevHash = seq, prev
			recs[i].Hash = chainHash(seq, prev, req.content)
			prev = recs[i].Hash
		}
	}
	if ch, ok := l.st.(store.AuditChainer); ok {
		// The store reads the head inside its write transaction: another
		// writer (a second process on the same database, such as the
		// command line next to a running gateway) cannot slip in between,
		// so the chain never forks and no retry is needed. The head is
		// normally the one the writer keeps (l.lastSeq, l.lastHash); the
		// store's is used, and the writer's corrected, when another
		// process appended in between.
		chain := func(last *store.AuditRecord) error {
			if last == nil {
				link(0, "")
			} else {
				link(last.Seq, last.Hash)
			}
			return nil
		}
		var err error
		if l.syncer != nil {
			if l.syncFailed.Load() {
				// The disk refused the last sync: do not acknowledge
				// more records until it takes one.
				if err = l.sync(); err != nil {
					return fmt.Errorf("audit: sync: %w", err)
				}
			}
			err = l.syncer.AppendAuditWritten(ctx, recs, chain)
			if err == nil {
				l.commits.Add(1)
				if err = l.written(); err != nil {
					err = fmt.Errorf("audit: sync: %w", err)
				}
			}
		} else {
			err = ch.AppendAuditChained(ctx, recs, chain)
			if err == nil {
				l.commits.Add(1)
			}
		}
		if err != nil {
			l.stale = true
			return err
		}
		last := recs[len(recs)-1]
		l.lastSeq, l.lastHash, l.stale = last.Seq, last.Hash, false
		return nil
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if l.stale {
			if err = l.reload(ctx); err != nil {
				return err
			}
		}
		link(l.lastSeq, l.lastHash)
		err = l.st.AppendAudit(ctx, recs)
		if err == nil {
			l.commits.Add(1)
			last := recs[len(recs)-1]
			l.lastSeq, l.lastHash = last.Seq, last.Hash
			return nil
		}
		// After any failure the stored tail is uncertain (another writer,
		// or a commit that failed late): read it again before retrying.
		l.stale = true
		if !errors.Is(err, store.ErrAuditConflict) {
			return err
		}
	}
	return err
}

func (l *Log) export(recs []*store.AuditRecord) {
	if l.exp == nil || len(l.exp.sinks) == 0 {
		return
	}
	out := make([]*Record, len(recs))
	for i, r := range recs {
		out[i] = FromStore(r)
	}
	l.exp.submit(out)
}

// checkpoint starts signing the head of the chain if it moved since the
// last checkpoint. Signing runs outside the writer (a signing command or
// key service may be slow), so appends never wait for it; one signing at
// a time. The result comes back on cpDone.
func (l *Log) checkpoint() {
	if l.signer == nil || l.stale || l.lastSeq == 0 || l.lastSeq <= l.lastCheckpoint {
		return
	}
	if l.signing {
		l.cpWanted = true
		return
	}
	c := &Checkpoint{Kind: CheckpointKind, Seq: l.lastSeq, Hash: l.lastHash, KeyID: l.keyID,
		Time: l.opts.Clock().UTC().Truncate(time.Microsecond)}
	l.signing = true
	if _, local := l.signer.(*KeySigner); local {
		// A key in memory signs in microseconds: no need to leave the
		// writer.
		l.checkpointDone(cpResult{c, l.signAndPublish(c)})
		return
	}
	go func() { l.cpDone <- cpResult{c, l.signAndPublish(c)} }()
}

// waitSigning waits for the signing in progress, if any, and handles it.
func (l *Log) waitSigning() {
	for l.signing {
		l.checkpointDone(<-l.cpDone)
	}
}

// signAndPublish signs c, checks the signature with the public key,
// stores c, appends it to the checkpoint file and queues it for the
// exporters. Only a failure to sign or store fails it.
func (l *Log) signAndPublish(c *Checkpoint) error {
	msg := checkpointMessage(c.Seq, c.Hash, c.Time)
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), checkpointEnvKey{}, c), l.opts.SigningTimeout)
	sig, err := l.signer.SignCheckpoint(ctx, msg)
	cancel()
	if err != nil {
		return err
	}
	if !ed25519.Verify(l.pub, msg, sig) {
		return fmt.Errorf("audit: the checkpoint signature does not verify with the public key (key id %s): checkpoint discarded", l.keyID)
	}
	c.Signature = sig
	ctx, cancel = context.WithTimeout(context.Background(), l.opts.WriteTimeout)
	defer cancel()
	err = l.st.PutAuditCheckpoint(ctx, &store.AuditCheckpoint{Seq: c.Seq, Hash: c.Hash, KeyID: c.KeyID, Time: c.Time, Signature: sig})
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("audit: checkpoint not stored: %w", err)
	}
	if l.cpFile != nil {
		if err := l.cpFile.ExportCheckpoint(ctx, c); err != nil {
			l.logger.Error("audit: checkpoint not written to the checkpoint file", "seq", c.Seq, "error", err)
		}
	}
	l.exp.submitCheckpoint(c)
	return nil
}

// checkpointDone handles the outcome of a signing (in the writer).
func (l *Log) checkpointDone(res cpResult) {
	l.signing = false
	if res.err != nil {
		l.checkpointFailed(res.c, res.err)
		return
	}
	l.lastCheckpoint = max(l.lastCheckpoint, res.c.Seq)
	if l.failing {
		l.logger.Info("audit: checkpoints are signed again", "seq", res.c.Seq)
		l.failing, l.failBackoff, l.retryAt = false, 0, time.Time{}
	}
	if l.cpWanted {
		l.cpWanted = false
		l.checkpoint()
		return
	}
	l.maybeCheckpoint()
}

// failureRecordEvery bounds how often a run of signing failures is
// recorded in the chain (every failure is logged).
const failureRecordEvery = time.Hour

// checkpointFailed logs a failed signing, records it in the chain (the
// first of a run of failures, then at most every failureRecordEvery),
// and backs off count-triggered retries. Appends go on; the next
// checkpoint that succeeds covers every record since the last one.
func (l *Log) checkpointFailed(c *Checkpoint, err error) {
	l.cpWanted = false
	maxBackoff := l.opts.CheckpointInterval
	if maxBackoff <= 0 {
		maxBackoff = DefaultCheckpointInterval
	}
	l.failBackoff = min(max(2*l.failBackoff, time.Second), maxBackoff)
	l.retryAt = time.Now().Add(l.failBackoff)
	l.logger.Error("audit: checkpoint not signed; the records after the last checkpoint stay uncovered until one succeeds",
		"seq", c.Seq, "last_checkpoint", l.lastCheckpoint, "retry_in", l.failBackoff, "error", err)
	first := !l.failing
	l.failing = true
	if !first && time.Since(l.failRecorded) < failureRecordEvery {
		return
	}
	l.failRecorded = time.Now()
	r := &Record{Client: ClientAuditLog, Action: ActionCheckpointFailed, Target: fmt.Sprintf("checkpoint at %d", c.Seq),
		Outcome: OutcomeError, Error: err.Error(), Time: l.opts.Clock().UTC().Truncate(time.Microsecond)}
	sr := toStore(r, false)
	content, cerr := digestContent(sr)
	if cerr != nil {
		return
	}
	l.commit([]*request{{rec: sr, content: content, done: make(chan error, 1)}})
}
