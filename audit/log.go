package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
)

// Options configure a Log. The zero value (or nil) is usable: no
// checkpoints (no key), digests only, fail closed.
type Options struct {
	// KeyPath is the Ed25519 checkpoint signing key (PEM PKCS #8),
	// generated with mode 0600 on first use. Empty disables checkpoints.
	KeyPath string
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
	// Exporters receive every stored record, asynchronously. The Log
	// owns them: Close closes them.
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
	// ExportQueue bounds the batches waiting for each exporter
	// (0: 1024); when full, batches are dropped for that exporter and
	// the drop is logged.
	ExportQueue int
	// ExportAttempts bounds the tries of one export (0: 3).
	ExportAttempts int
}

// Log appends records to the audit chain. It is safe for concurrent use;
// one writer goroutine commits concurrent appends in groups.
type Log struct {
	st     store.AuditLog
	opts   Options
	logger *slog.Logger
	key    ed25519.PrivateKey
	keyID  string

	reqs    chan *request
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
	exp     *dispatcher

	// Owned by the writer goroutine.
	lastSeq, lastCheckpoint uint64
	lastHash                string
	stale                   bool
	peak                    int // recent batch size, decaying
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
	l := &Log{st: st, reqs: make(chan *request), closing: make(chan struct{}), done: make(chan struct{})}
	if opts != nil {
		l.opts = *opts
	}
	o := &l.opts
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
	if o.Clock == nil {
		o.Clock = time.Now
	}
	l.logger = o.Logger
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if o.KeyPath != "" {
		k, err := LoadOrCreateKey(o.KeyPath)
		if err != nil {
			return nil, err
		}
		l.key, l.keyID = k, KeyID(k.Public().(ed25519.PublicKey))
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.WriteTimeout)
	defer cancel()
	if err := l.reload(ctx); err != nil {
		return nil, err
	}
	cps, err := st.ListAuditCheckpoints(ctx)
	if err != nil {
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
	go l.run()
	return l, nil
}

// PublicKey returns the checkpoint verification key, or nil when
// checkpoints are disabled.
func (l *Log) PublicKey() ed25519.PublicKey {
	if l.key == nil {
		return nil
	}
	return l.key.Public().(ed25519.PublicKey)
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
// durable in the store (or, with Options.FailOpen, its failure has been
// logged). A record whose Args or Result is not valid JSON (or has
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
		err = l.exp.close()
	})
	return err
}

// run is the writer goroutine.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.key != nil && l.opts.CheckpointInterval > 0 {
		t := time.NewTicker(l.opts.CheckpointInterval)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*request, 0, l.opts.MaxBatch)
	for {
		select {
		case req := <-l.reqs:
			batch = l.collect(append(batch[:0], req))
			l.commit(batch)
			clear(batch)
		case <-tick:
			l.checkpoint()
		case <-l.closing:
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
			l.checkpoint()
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
		// peak follows the batch size up at once and down slowly.
		l.peak = max(len(batch), l.peak-l.peak/8)
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
	l.export(recs)
	for _, req := range batch {
		req.done <- nil
	}
	if l.key != nil && l.opts.CheckpointEvery > 0 && l.lastSeq-l.lastCheckpoint >= uint64(l.opts.CheckpointEvery) {
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
		// so the chain never forks and no retry is needed.
		err := ch.AppendAuditChained(ctx, recs, func(last *store.AuditRecord) error {
			if last == nil {
				link(0, "")
			} else {
				link(last.Seq, last.Hash)
			}
			return nil
		})
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

// checkpoint signs the head of the chain if it moved since the last
// checkpoint. A failure is logged and retried at the next trigger.
func (l *Log) checkpoint() {
	if l.key == nil || l.stale || l.lastSeq == 0 || l.lastSeq <= l.lastCheckpoint {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.WriteTimeout)
	defer cancel()
	now := l.opts.Clock().UTC().Truncate(time.Microsecond)
	c := &store.AuditCheckpoint{
		Seq: l.lastSeq, Hash: l.lastHash, KeyID: l.keyID, Time: now,
		Signature: ed25519.Sign(l.key, checkpointMessage(l.lastSeq, l.lastHash, now)),
	}
	if err := l.st.PutAuditCheckpoint(ctx, c); err != nil && !errors.Is(err, store.ErrExists) {
		l.logger.Error("audit: checkpoint not stored", "seq", c.Seq, "error", err)
		return
	}
	l.lastCheckpoint = c.Seq
}
