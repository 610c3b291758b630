package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
)

// Exporter sends stored records elsewhere (files, syslog, OpenTelemetry).
// The Log calls Export from one goroutine per exporter, after the records
// are durable, with records in chain order; a failed Export is retried a
// bounded number of times and then the batch is dropped for that exporter
// (and the drop logged). Exporting never delays or fails an Append.
type Exporter interface {
	// Export sends recs. The records must not be modified.
	Export(ctx context.Context, recs []*Record) error
	// Close flushes and releases the exporter.
	Close() error
}

// exportTimeout bounds one Export call.
const exportTimeout = 10 * time.Second

// closeTimeout bounds how long Close waits for the exporters to drain.
const closeTimeout = 15 * time.Second

type sink struct {
	e     Exporter
	queue chan exportItem
	done  chan struct{}
}

// exportItem is a batch of records or a checkpoint.
type exportItem struct {
	recs []*Record
	cp   *Checkpoint
}

type dispatcher struct {
	sinks    []*sink
	logger   *slog.Logger
	attempts int
	stop     chan struct{} // closed when Close gives up waiting
}

func newDispatcher(exps []Exporter, logger *slog.Logger, queue, attempts int) *dispatcher {
	if queue <= 0 {
		queue = 1024
	}
	if attempts <= 0 {
		attempts = 3
	}
	d := &dispatcher{logger: logger, attempts: attempts, stop: make(chan struct{})}
	for _, e := range exps {
		if e == nil {
			continue
		}
		s := &sink{e: e, queue: make(chan exportItem, queue), done: make(chan struct{})}
		d.sinks = append(d.sinks, s)
		go d.run(s)
	}
	return d
}

// submit queues recs for every exporter without blocking.
func (d *dispatcher) submit(recs []*Record) {
	for _, s := range d.sinks {
		select {
		case s.queue <- exportItem{recs: recs}:
		default:
			d.logger.Warn("audit: export queue full, batch dropped", "exporter", fmt.Sprintf("%T", s.e), "records", len(recs), "first_seq", recs[0].Seq)
		}
	}
}

// submitCheckpoint queues c for every exporter that takes checkpoints,
// without blocking.
func (d *dispatcher) submitCheckpoint(c *Checkpoint) {
	for _, s := range d.sinks {
		if _, ok := s.e.(CheckpointSink); !ok {
			continue
		}
		select {
		case s.queue <- exportItem{cp: c}:
		default:
			d.logger.Error("audit: export queue full, checkpoint dropped", "exporter", fmt.Sprintf("%T", s.e), "seq", c.Seq)
		}
	}
}

func (d *dispatcher) run(s *sink) {
	defer close(s.done)
	for it := range s.queue {
		d.send(s.e, it)
	}
}

func (d *dispatcher) send(e Exporter, it exportItem) {
	backoff := 100 * time.Millisecond
	what, n, first := "batch", len(it.recs), uint64(0)
	if it.cp != nil {
		what, first = "checkpoint", it.cp.Seq
	} else {
		first = it.recs[0].Seq
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
		var err error
		if it.cp != nil {
			err = e.(CheckpointSink).ExportCheckpoint(ctx, it.cp)
		} else {
			err = e.Export(ctx, it.recs)
		}
		cancel()
		if err == nil {
			return
		}
		if attempt >= d.attempts {
			d.logger.Error("audit: export failed, "+what+" dropped", "exporter", fmt.Sprintf("%T", e), "records", n, "first_seq", first, "attempts", attempt, "error", err)
			return
		}
		d.logger.Warn("audit: export failed, retrying", "exporter", fmt.Sprintf("%T", e), "attempt", attempt, "error", err)
		select {
		case <-time.After(backoff):
		case <-d.stop:
			return
		}
		backoff *= 2
	}
}

// close drains the queues (bounded by closeTimeout) and closes the
// exporters.
func (d *dispatcher) close() error {
	for _, s := range d.sinks {
		close(s.queue)
	}
	timeout := time.NewTimer(closeTimeout)
	defer timeout.Stop()
	var errs []error
	for _, s := range d.sinks {
		select {
		case <-s.done:
		case <-timeout.C:
			close(d.stop)
			errs = append(errs, errors.New("audit: exporters did not drain in time"))
			<-s.done
		}
	}
	for _, s := range d.sinks {
		if err := s.e.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// JSONLExporter appends records to a file, one JSON object per line. It
// writes each batch with one write and then fsyncs the file, so a batch
// that Export reports sent is on disk. When the file is renamed or
// removed (log rotation), the next Export creates a new file at the path.
type JSONLExporter struct {
	path   string
	what   string // "checkpoint file" or "" (a JSONL export)
	mu     sync.Mutex
	f      *os.File // nil after a failed reopen: the next Export retries
	closed bool
}

// NewJSONLExporter opens (creating with mode 0600) the file at path for
// appending.
func NewJSONLExporter(path string) (Exporter, error) {
	e := &JSONLExporter{path: path}
	if err := e.open(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *JSONLExporter) name() string {
	if e.what != "" {
		return e.what
	}
	return "jsonl export"
}

func (e *JSONLExporter) open() error {
	f, err := os.OpenFile(e.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %s %s: %w", e.name(), e.path, err)
	}
	e.f = f
	return nil
}

// rotated reports whether the open file is no longer the one at path.
func (e *JSONLExporter) rotated() bool {
	at, err := os.Stat(e.path)
	if err != nil {
		return true
	}
	open, err := e.f.Stat()
	return err != nil || !os.SameFile(at, open)
}

// Export implements Exporter.
func (e *JSONLExporter) Export(ctx context.Context, recs []*Record) error {
	var buf []byte
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("audit: jsonl export: record %d: %w", r.Seq, err)
		}
		buf = append(append(buf, b...), '\n')
	}
	return e.write(buf)
}

// ExportCheckpoint implements CheckpointSink: the checkpoint is one line
// with "kind":"checkpoint", written and fsync'd like a batch.
func (e *JSONLExporter) ExportCheckpoint(ctx context.Context, c *Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("audit: jsonl export: checkpoint %d: %w", c.Seq, err)
	}
	return e.write(append(b, '\n'))
}

// write appends buf with one write and fsyncs the file.
func (e *JSONLExporter) write(buf []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("audit: %s: closed", e.name())
	}
	if e.f != nil && e.rotated() {
		e.f.Close()
		e.f = nil
	}
	if e.f == nil {
		if err := e.open(); err != nil {
			return err
		}
	}
	if _, err := e.f.Write(buf); err != nil {
		return fmt.Errorf("audit: %s %s: %w", e.name(), e.path, err)
	}
	if err := e.f.Sync(); err != nil {
		return fmt.Errorf("audit: %s %s: %w", e.name(), e.path, err)
	}
	return nil
}

// Close implements Exporter.
func (e *JSONLExporter) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.f == nil {
		e.closed = true
		return nil
	}
	e.closed = true
	err := e.f.Close()
	e.f = nil
	return err
}
