package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"

	"github.com/mcpgate/mcpgate/store"
)

// fakeLog is a store.AuditLog whose rows tests can tamper with freely:
// ReadAudit yields the slice in its order, as stored.
type fakeLog struct {
	mu      sync.Mutex
	recs    []*store.AuditRecord
	cps     []*store.AuditCheckpoint
	failErr error // returned by AppendAudit when set
	appends int
	sizes   []int // records in each stored transaction
	// gate, when not nil, holds the store: every AppendAudit first
	// receives from it (a test releases one transaction per send, or all
	// of them by closing it). A channel rather than a mutex so that a
	// writer waiting on it is durably blocked inside a synctest bubble.
	gate chan struct{}
}

var _ store.AuditLog = (*fakeLog)(nil)

func (f *fakeLog) AppendAudit(ctx context.Context, recs []*store.AuditRecord) error {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failErr != nil {
		return f.failErr
	}
	var last *store.AuditRecord
	if n := len(f.recs); n > 0 {
		last = f.recs[n-1]
	}
	if err := store.CheckAuditAppend(last, recs); err != nil {
		return err
	}
	f.appends++
	f.sizes = append(f.sizes, len(recs))
	for _, r := range recs {
		f.recs = append(f.recs, store.CloneAuditRecord(r))
	}
	return nil
}

func (f *fakeLog) ReadAudit(ctx context.Context, from uint64) iter.Seq2[*store.AuditRecord, error] {
	return func(yield func(*store.AuditRecord, error) bool) {
		f.mu.Lock()
		recs := make([]*store.AuditRecord, 0, len(f.recs))
		for _, r := range f.recs {
			if r.Seq >= from {
				recs = append(recs, store.CloneAuditRecord(r))
			}
		}
		f.mu.Unlock()
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (f *fakeLog) LastAudit(ctx context.Context) (*store.AuditRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failErr != nil {
		return nil, f.failErr
	}
	if len(f.recs) == 0 {
		return nil, store.ErrNotFound
	}
	return store.CloneAuditRecord(f.recs[len(f.recs)-1]), nil
}

func (f *fakeLog) PutAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failErr != nil {
		return f.failErr
	}
	for _, o := range f.cps {
		if o.Seq == c.Seq {
			return fmt.Errorf("checkpoint %d: %w", c.Seq, store.ErrExists)
		}
	}
	cp := *c
	f.cps = append(f.cps, &cp)
	return nil
}

func (f *fakeLog) ListAuditCheckpoints(ctx context.Context) ([]*store.AuditCheckpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*store.AuditCheckpoint, len(f.cps))
	for i, c := range f.cps {
		cp := *c
		out[i] = &cp
	}
	return out, nil
}

// index returns the slice index of the record with seq.
func (f *fakeLog) index(seq uint64) int {
	for i, r := range f.recs {
		if r.Seq == seq {
			return i
		}
	}
	panic(fmt.Sprintf("no record %d", seq))
}

// rehash recomputes the hash of the record at slice index i and, when
// chain is set, re-links and re-hashes every later record (as an attacker
// without the signing key can).
func (f *fakeLog) rehash(i int, chain bool) {
	for ; i < len(f.recs); i++ {
		r := f.recs[i]
		if chain && i > 0 {
			r.PrevHash = f.recs[i-1].Hash
		}
		c, err := digestContent(r)
		if err != nil {
			panic(err)
		}
		r.Hash = chainHash(r.Seq, r.PrevHash, c)
		if !chain {
			return
		}
	}
}

var errStoreDown = errors.New("store down")
