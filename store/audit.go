package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"
)

// ErrAuditConflict reports an AppendAudit whose first record does not
// continue the stored chain (its sequence number is not one past the last
// stored record, or its PrevHash is not the last stored hash), or whose
// records are not contiguous and linked among themselves. The caller
// reloads the tail with LastAudit and re-chains its batch.
var ErrAuditConflict = errors.New("store: audit record does not continue the chain")

// AuditRecord is one stored record of the tamper-evident audit log. The
// audit package computes every field; the store keeps them exactly as
// given (strings byte for byte, Time to the nanosecond) and never
// interprets them.
type AuditRecord struct {
	// Seq is the record's position in the chain, starting at 1.
	Seq uint64
	// Time is when the record was written.
	Time time.Time
	// User, Client and Session are the principal chain.
	User, Client, Session string
	// Upstream is the upstream server concerned, if any.
	Upstream string
	// Action is the MCP method or event kind.
	Action string
	// Target is the tool, resource, prompt, client or other object acted on.
	Target string
	// Decision is the policy decision, "" for non-decisions.
	Decision string
	// PolicyVersion is the hash of the policy set that decided.
	PolicyVersion string
	// Policies are the ids of the policies that decided.
	Policies []string
	// ArgsDigest and ResultDigest are hex SHA-256 digests of the canonical
	// arguments and result.
	ArgsDigest, ResultDigest string
	// Args and Result are the raw JSON payloads, kept only when the log is
	// configured to keep them; nil otherwise.
	Args, Result []byte
	// Outcome is ok, error, denied, ...
	Outcome string
	// Error is the error message of a failed action.
	Error string
	// LatencyMicros is the action's duration in microseconds.
	LatencyMicros int64
	// Phase is "decided" or "completed" for tool calls, "" otherwise.
	Phase string
	// PrevHash is the Hash of record Seq-1 ("" for the first record).
	PrevHash string
	// Hash is the record's chain hash.
	Hash string
}

// AuditCheckpoint is a signed statement that the audit chain up to Seq
// ended in Hash.
type AuditCheckpoint struct {
	// Seq is the sequence number of the last record covered.
	Seq uint64
	// Hash is that record's Hash.
	Hash string
	// Signature is the signature over the checkpoint.
	Signature []byte
	// KeyID identifies the signing key.
	KeyID string
	// Time is when the checkpoint was made.
	Time time.Time
}

// AuditLog stores the audit chain and its checkpoints. Records are
// append-only: the interface has no way to change or remove one.
// Implementations are safe for concurrent use.
type AuditLog interface {
	// AppendAudit stores recs atomically: all of them or none. recs must
	// continue the stored chain (recs[0].Seq is one past the last stored
	// Seq, or 1 for an empty log, and recs[0].PrevHash is the last stored
	// Hash) and be contiguous and linked among themselves; otherwise
	// AppendAudit stores nothing and returns an error wrapping
	// ErrAuditConflict. It returns only once the records are durable.
	AppendAudit(ctx context.Context, recs []*AuditRecord) error
	// ReadAudit yields the stored records with Seq >= from in ascending
	// Seq order. It reflects what is stored, even if it was tampered with
	// (gaps, duplicates), and stops after the first error.
	ReadAudit(ctx context.Context, from uint64) iter.Seq2[*AuditRecord, error]
	// LastAudit returns the record with the highest Seq, or an error
	// wrapping ErrNotFound when the log is empty.
	LastAudit(ctx context.Context) (*AuditRecord, error)
	// PutAuditCheckpoint stores a checkpoint; a second checkpoint for the
	// same Seq is refused with an error wrapping ErrExists.
	PutAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error
	// ListAuditCheckpoints returns every checkpoint in ascending Seq order.
	ListAuditCheckpoints(ctx context.Context) ([]*AuditCheckpoint, error)
}

// AuditChainer is implemented by AuditLog stores that can chain a batch
// to the stored head inside their write transaction. Writers in several
// processes sharing one store (a gateway and the command line, or
// replicas) then never fork the chain nor conflict: each batch is linked
// to the head as it is when the batch is written, not as a writer last
// saw it.
type AuditChainer interface {
	// AppendAuditChained reads the record with the highest Seq (nil for
	// an empty log) inside one write transaction, calls chain with it (an
	// implementation may set only its Seq and Hash, all chaining needs), and
	// stores recs as AppendAudit does. chain must set Seq, PrevHash and
	// Hash of every record so that recs continue last; if it returns an
	// error nothing is stored and that error is returned.
	AppendAuditChained(ctx context.Context, recs []*AuditRecord, chain func(last *AuditRecord) error) error
}

// AuditSyncer is implemented by AuditLog stores that can separate writing
// records from making them durable: AppendAuditWritten returns once the
// records are committed and handed to the operating system (they survive
// the process being killed, not a power loss or a kernel crash), and
// SyncAudit forces them to stable storage. The audit log's writer uses it
// to apply its sync policy (audit.SyncAlways, SyncGroup, SyncOS).
type AuditSyncer interface {
	AuditChainer
	// AppendAuditWritten is AppendAuditChained, except that it returns
	// once the records are written to the operating system rather than
	// once they are on stable storage. Its chain function receives the
	// head with at least Seq and Hash set.
	AppendAuditWritten(ctx context.Context, recs []*AuditRecord, chain func(last *AuditRecord) error) error
	// SyncAudit makes every record appended so far durable (it calls
	// fsync). It is safe to call concurrently with appends.
	SyncAudit(ctx context.Context) error
}

// CheckAuditAppend reports whether recs may be appended after last (nil
// for an empty log), as AppendAudit requires. Implementations call it
// inside their transaction.
func CheckAuditAppend(last *AuditRecord, recs []*AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	var seq uint64
	var hash string
	if last != nil {
		seq, hash = last.Seq, last.Hash
	}
	for i, r := range recs {
		if r == nil {
			return fmt.Errorf("audit record %d of batch is nil: %w", i, ErrAuditConflict)
		}
		if r.Seq != seq+1 || r.PrevHash != hash {
			return fmt.Errorf("audit record seq %d (prev %.12s) cannot follow seq %d (hash %.12s): %w", r.Seq, r.PrevHash, seq, hash, ErrAuditConflict)
		}
		seq, hash = r.Seq, r.Hash
	}
	return nil
}

// CloneAuditRecord returns a deep copy of r.
func CloneAuditRecord(r *AuditRecord) *AuditRecord {
	c := *r
	c.Policies = slices.Clone(r.Policies)
	c.Args = bytes.Clone(r.Args)
	c.Result = bytes.Clone(r.Result)
	return &c
}
