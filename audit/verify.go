package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"iter"

	"github.com/mcpgate/mcpgate/store"
)

// Kinds of Problem.
const (
	// ProblemEdited: a record's content no longer matches its hash, or a
	// record was replaced by one with a recomputed hash.
	ProblemEdited = "edited"
	// ProblemDeleted: records are missing (a sequence gap, renumbering, or
	// a checkpoint beyond the end of the log).
	ProblemDeleted = "deleted"
	// ProblemInserted: a record that was not written by the log is in the
	// chain (an extra sequence number, or a chain break around it).
	ProblemInserted = "inserted"
	// ProblemReordered: records are out of the order they were written in
	// (the previous-hash links are broken).
	ProblemReordered = "reordered"
	// ProblemCheckpoint: a checkpoint's signature is invalid or made with
	// another key.
	ProblemCheckpoint = "bad-checkpoint"
)

// searchWindow is how far from its position Verify looks for the
// sequence number a moved record was written with.
const searchWindow = 1024

// Report is the result of Verify.
type Report struct {
	// Records is the number of records verified before the first problem
	// (all of them when OK).
	Records int
	// Checkpoints is the number of stored checkpoints.
	Checkpoints int
	// LastSeq is the sequence number of the last verified record.
	LastSeq uint64
	// LastCheckpointSeq is the highest checkpoint matched against the
	// chain.
	LastCheckpointSeq uint64
	// Unanchored is the number of records after the last matched
	// checkpoint: no signature covers them yet.
	Unanchored uint64
	// SignaturesChecked reports whether checkpoint signatures were
	// verified (Verify was given a public key).
	SignaturesChecked bool
	// OK reports that no problem was found.
	OK bool
	// FirstBad is the first problem in sequence order, nil when OK.
	FirstBad *Problem
}

// Problem names a record that is not as the log wrote it.
type Problem struct {
	// Seq is the sequence number of the first bad record.
	Seq uint64
	// Kind is ProblemEdited, ProblemDeleted, ProblemInserted,
	// ProblemReordered or ProblemCheckpoint.
	Kind string
	// Detail explains what was found.
	Detail string
}

// String returns "record N KIND: DETAIL" ("record N differs from
// DETAIL" for ProblemDiffers, "checkpoint at record N invalid: DETAIL" for
// ProblemCheckpoint).
func (p *Problem) String() string {
	switch p.Kind {
	case ProblemCheckpoint:
		return fmt.Sprintf("checkpoint at record %d invalid: %s", p.Seq, p.Detail)
	case ProblemDiffers:
		return fmt.Sprintf("record %d differs from %s", p.Seq, p.Detail)
	}
	return fmt.Sprintf("record %d %s: %s", p.Seq, p.Kind, p.Detail)
}

// Verify walks the stored chain and its checkpoints and reports the first
// record that was edited, deleted, inserted or reordered, and any
// checkpoint whose signature does not verify with pub. With a nil pub the
// checkpoints are still matched against the chain but their signatures
// are not checked (Report.SignaturesChecked is false). The error is for
// failures to read the store; tampering is reported in the Report.
//
// What can be detected: any change to a record up to the last
// checkpoint, and any change to a record that leaves the chain links
// inconsistent. Someone able to write the store can append well-formed
// records after the last checkpoint, or rewrite the chain after it: the
// Log signs a checkpoint every CheckpointEvery records and
// CheckpointInterval, and on Close, to keep that window short
// (Report.Unanchored says how many records it holds).
func Verify(ctx context.Context, st store.AuditLog, pub ed25519.PublicKey) (*Report, error) {
	rep := &Report{SignaturesChecked: pub != nil}
	cps, err := st.ListAuditCheckpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: reading checkpoints: %w", err)
	}
	rep.Checkpoints = len(cps)
	var cpProblem *Problem
	valid := make(map[uint64]*store.AuditCheckpoint, len(cps))
	var keyID string
	if pub != nil {
		keyID = KeyID(pub)
	}
	for _, c := range cps {
		var p *Problem
		switch {
		case pub == nil:
		case c.KeyID != keyID:
			p = &Problem{Seq: c.Seq, Kind: ProblemCheckpoint, Detail: fmt.Sprintf("signed with key %q, not the verification key %q", c.KeyID, keyID)}
		case !ed25519.Verify(pub, checkpointMessage(c.Seq, c.Hash, c.Time), c.Signature):
			p = &Problem{Seq: c.Seq, Kind: ProblemCheckpoint, Detail: "signature does not verify (the checkpoint was altered or forged)"}
		}
		if p != nil {
			if cpProblem == nil || p.Seq < cpProblem.Seq {
				cpProblem = p
			}
			continue
		}
		valid[c.Seq] = c
	}

	chainProblem, err := walk(ctx, st, valid, rep)
	if err != nil {
		return nil, err
	}
	if chainProblem == nil {
		// Checkpoints past the end: the tail was cut off.
		for _, c := range cps {
			if valid[c.Seq] != nil && c.Seq > rep.LastSeq {
				chainProblem = &Problem{Seq: rep.LastSeq + 1, Kind: ProblemDeleted,
					Detail: fmt.Sprintf("a signed checkpoint covers records up to %d but the log ends at %d", c.Seq, rep.LastSeq)}
				break
			}
		}
	}
	rep.Unanchored = rep.LastSeq - rep.LastCheckpointSeq
	rep.FirstBad = chainProblem
	if cpProblem != nil && (rep.FirstBad == nil || cpProblem.Seq < rep.FirstBad.Seq) {
		rep.FirstBad = cpProblem
	}
	rep.OK = rep.FirstBad == nil
	return rep, nil
}

// walk verifies the records in order and returns the first problem.
func walk(ctx context.Context, st store.AuditLog, cps map[uint64]*store.AuditCheckpoint, rep *Report) (*Problem, error) {
	next, stop := iter.Pull2(st.ReadAudit(ctx, 0))
	defer stop()
	pull := func() (*entry, error) {
		r, err, ok := next()
		if !ok {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit: verify: reading records: %w", err)
		}
		e := &entry{rec: r}
		e.content, e.contentErr = digestContent(r)
		return e, nil
	}
	v := &verifier{expect: 1}
	cur, err := pull()
	if err != nil {
		return nil, err
	}
	for cur != nil {
		nxt, err := pull()
		if err != nil {
			return nil, err
		}
		if p := v.step(cur, nxt); p != nil {
			return p, nil
		}
		r := cur.rec
		rep.Records++
		rep.LastSeq = r.Seq
		if c := cps[r.Seq]; c != nil {
			if c.Hash != r.Hash {
				return &Problem{Seq: rep.LastCheckpointSeq + 1, Kind: ProblemEdited,
					Detail: fmt.Sprintf("the signed checkpoint at %d does not match the chain: a record in %d..%d was altered and the chain after it recomputed", r.Seq, rep.LastCheckpointSeq+1, r.Seq)}, nil
			}
			rep.LastCheckpointSeq = r.Seq
		}
		cur = nxt
	}
	return nil, nil
}

type entry struct {
	rec        *store.AuditRecord
	content    contentDigest
	contentErr error
}

// validAs reports whether e's hash is right for sequence number seq.
func (e *entry) validAs(seq uint64) bool {
	return e.contentErr == nil && chainHash(seq, e.rec.PrevHash, e.content) == e.rec.Hash
}

// writtenAs returns the sequence number e's hash was computed with,
// searching around its stored position.
func (e *entry) writtenAs() (uint64, bool) {
	if e.validAs(e.rec.Seq) {
		return e.rec.Seq, true
	}
	if e.contentErr != nil {
		return 0, false
	}
	for d := uint64(1); d <= searchWindow; d++ {
		if k := e.rec.Seq + d; e.validAs(k) {
			return k, true
		}
		if d < e.rec.Seq {
			if k := e.rec.Seq - d; e.validAs(k) {
				return k, true
			}
		}
	}
	return 0, false
}

type verifier struct {
	expect uint64 // next expected sequence number
	prev   string // hash of record expect-1
	ring   [searchWindow]struct {
		seq  uint64
		hash string
	}
}

func (v *verifier) hashAt(seq uint64) (string, bool) {
	if seq == 0 {
		return "", true
	}
	s := v.ring[seq%searchWindow]
	return s.hash, s.seq == seq
}

// step checks cur (whose successor is nxt, nil at the end) and advances.
func (v *verifier) step(cur, nxt *entry) *Problem {
	r, e := cur.rec, v.expect
	switch {
	case r.Seq > e:
		if r.Seq == e+1 {
			return &Problem{Seq: e, Kind: ProblemDeleted, Detail: fmt.Sprintf("record %d is missing (the log goes from %d to %d)", e, e-1, r.Seq)}
		}
		return &Problem{Seq: e, Kind: ProblemDeleted, Detail: fmt.Sprintf("records %d..%d are missing (the log goes from %d to %d)", e, r.Seq-1, e-1, r.Seq)}
	case r.Seq < e:
		return &Problem{Seq: r.Seq, Kind: ProblemInserted, Detail: fmt.Sprintf("a second record with sequence number %d", r.Seq)}
	}
	selfOK := cur.validAs(e)
	switch {
	case selfOK && r.PrevHash == v.prev:
		if p := checkPayloads(r); p != nil {
			return p
		}
		v.ring[e%searchWindow].seq, v.ring[e%searchWindow].hash = e, r.Hash
		v.expect, v.prev = e+1, r.Hash
		return nil

	case selfOK:
		// Consistent in itself but not linked to its predecessor.
		switch {
		case nxt != nil && nxt.rec.PrevHash == r.Hash && e > 1:
			return &Problem{Seq: e - 1, Kind: ProblemEdited, Detail: fmt.Sprintf("record %d was replaced: its hash is not the one record %d was chained to (the hash was recomputed after an edit)", e-1, e)}
		case nxt != nil && nxt.rec.PrevHash == v.prev:
			return &Problem{Seq: e, Kind: ProblemInserted, Detail: fmt.Sprintf("record %d is not in the chain: record %d is chained directly to record %d", e, e+1, e-1)}
		case e == 1:
			return &Problem{Seq: e, Kind: ProblemEdited, Detail: "the first record is chained to a previous hash"}
		}
		return &Problem{Seq: e, Kind: ProblemReordered, Detail: fmt.Sprintf("record %d is not chained to record %d", e, e-1)}
	}

	// The hash does not match the content at this position.
	if k, ok := cur.writtenAs(); ok {
		if k > e {
			// A later record moved here: reordered, unless everything
			// from here on is shifted down (records deleted, renumbered).
			if nxt == nil {
				return &Problem{Seq: e, Kind: ProblemDeleted, Detail: fmt.Sprintf("records %d..%d are missing: record %d was renumbered %d", e, k-1, k, e)}
			}
			if kn, okn := nxt.writtenAs(); okn && kn == k+1 {
				return &Problem{Seq: e, Kind: ProblemDeleted, Detail: fmt.Sprintf("records %d..%d are missing: the records from %d on were renumbered", e, k-1, k)}
			}
			return &Problem{Seq: e, Kind: ProblemReordered, Detail: fmt.Sprintf("the record at %d was written as record %d", e, k)}
		}
		// k < e: written earlier in the chain.
		if h, ok := v.hashAt(k); ok && h == r.Hash {
			return &Problem{Seq: e, Kind: ProblemInserted, Detail: fmt.Sprintf("record %d is a copy of record %d", e, k)}
		}
		if h, ok := v.hashAt(k - 1); ok && h == r.PrevHash {
			return &Problem{Seq: k, Kind: ProblemInserted, Detail: fmt.Sprintf("records %d..%d are not in the chain: the record now at %d was written as record %d", k, e-1, e, k)}
		}
		return &Problem{Seq: e, Kind: ProblemReordered, Detail: fmt.Sprintf("the record at %d was written as record %d", e, k)}
	}
	if nxt != nil && nxt.validAs(e) {
		return &Problem{Seq: e, Kind: ProblemInserted, Detail: fmt.Sprintf("record %d is not in the chain: the records after it were renumbered up by one", e)}
	}
	if r.PrevHash != v.prev && (nxt == nil || nxt.rec.PrevHash != r.Hash) {
		return &Problem{Seq: e, Kind: ProblemInserted, Detail: fmt.Sprintf("record %d is not in the chain: neither its hash nor its link to record %d match", e, e-1)}
	}
	if cur.contentErr != nil {
		return &Problem{Seq: e, Kind: ProblemEdited, Detail: fmt.Sprintf("the stored content is unreadable: %v", cur.contentErr)}
	}
	return &Problem{Seq: e, Kind: ProblemEdited, Detail: "the stored content does not match the record's hash"}
}

// checkPayloads checks kept payloads against their digests.
func checkPayloads(r *store.AuditRecord) *Problem {
	for _, p := range []struct {
		name    string
		payload []byte
		digest  string
	}{{"arguments", r.Args, r.ArgsDigest}, {"result", r.Result, r.ResultDigest}} {
		if len(p.payload) == 0 {
			continue
		}
		if d, err := Digest(p.payload); err != nil || d != p.digest {
			return &Problem{Seq: r.Seq, Kind: ProblemEdited, Detail: fmt.Sprintf("the stored %s do not match their digest", p.name)}
		}
	}
	return nil
}
