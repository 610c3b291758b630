package store

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"sync"
)

// AuditMemory is an in-memory AuditLog for tests and single-process use.
// Nothing survives the process.
type AuditMemory struct {
	mu          sync.Mutex
	records     []*AuditRecord // ascending Seq
	checkpoints []*AuditCheckpoint
}

var (
	_ AuditLog     = (*AuditMemory)(nil)
	_ AuditChainer = (*AuditMemory)(nil)
)

// NewAuditMemory returns an empty in-memory audit log.
func NewAuditMemory() *AuditMemory { return &AuditMemory{} }

// AppendAudit implements AuditLog.
func (m *AuditMemory) AppendAudit(ctx context.Context, recs []*AuditRecord) error {
	return m.AppendAuditChained(ctx, recs, nil)
}

// AppendAuditChained implements AuditChainer. A nil chain stores recs as
// given, as AppendAudit does.
func (m *AuditMemory) AppendAuditChained(ctx context.Context, recs []*AuditRecord, chain func(last *AuditRecord) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var last *AuditRecord
	if n := len(m.records); n > 0 {
		last = m.records[n-1]
	}
	if chain != nil && len(recs) > 0 {
		var head *AuditRecord
		if last != nil {
			head = CloneAuditRecord(last)
		}
		if err := chain(head); err != nil {
			return err
		}
	}
	if err := CheckAuditAppend(last, recs); err != nil {
		return err
	}
	for _, r := range recs {
		m.records = append(m.records, CloneAuditRecord(r))
	}
	return nil
}

// ReadAudit implements AuditLog.
func (m *AuditMemory) ReadAudit(ctx context.Context, from uint64) iter.Seq2[*AuditRecord, error] {
	return func(yield func(*AuditRecord, error) bool) {
		m.mu.Lock()
		i := sort.Search(len(m.records), func(i int) bool { return m.records[i].Seq >= from })
		m.mu.Unlock()
		for ; ; i++ {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			m.mu.Lock()
			if i >= len(m.records) {
				m.mu.Unlock()
				return
			}
			r := CloneAuditRecord(m.records[i])
			m.mu.Unlock()
			if !yield(r, nil) {
				return
			}
		}
	}
}

// LastAudit implements AuditLog.
func (m *AuditMemory) LastAudit(ctx context.Context) (*AuditRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.records) == 0 {
		return nil, fmt.Errorf("last audit record: %w", ErrNotFound)
	}
	return CloneAuditRecord(m.records[len(m.records)-1]), nil
}

// PutAuditCheckpoint implements AuditLog.
func (m *AuditMemory) PutAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.checkpoints), func(i int) bool { return m.checkpoints[i].Seq >= c.Seq })
	if i < len(m.checkpoints) && m.checkpoints[i].Seq == c.Seq {
		return fmt.Errorf("audit checkpoint %d: %w", c.Seq, ErrExists)
	}
	cp := *c
	cp.Signature = append([]byte(nil), c.Signature...)
	m.checkpoints = append(m.checkpoints, nil)
	copy(m.checkpoints[i+1:], m.checkpoints[i:])
	m.checkpoints[i] = &cp
	return nil
}

// ListAuditCheckpoints implements AuditLog.
func (m *AuditMemory) ListAuditCheckpoints(ctx context.Context) ([]*AuditCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*AuditCheckpoint, len(m.checkpoints))
	for i, c := range m.checkpoints {
		cp := *c
		cp.Signature = append([]byte(nil), c.Signature...)
		out[i] = &cp
	}
	return out, nil
}
