package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/store"
)

// CheckpointKind is the "kind" of a checkpoint line in the checkpoint file
// and in JSON exports; record lines have no "kind".
const CheckpointKind = "checkpoint"

// Checkpoint is a signed head of the chain as published outside the
// database: one JSON line in the checkpoint file and in each export.
type Checkpoint struct {
	// Kind is always CheckpointKind.
	Kind string `json:"kind"`
	// Seq and Hash are the sequence number and hash of the record the
	// checkpoint signs (the head of the chain when it was signed).
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// Time is when the checkpoint was made (UTC, microseconds).
	Time time.Time `json:"time"`
	// KeyID identifies the signing key (see KeyID).
	KeyID string `json:"key_id"`
	// Signature is the Ed25519 signature of CheckpointMessage(Seq, Hash,
	// Time), base64 in JSON.
	Signature []byte `json:"signature"`
}

// CheckpointMessage returns the bytes a checkpoint signature covers:
//
//	"mcpgate.audit.checkpoint.v1" 0x00 || uint64be(seq) || uint32be(len(hash)) || hash || int64be(time in Unix ns)
func CheckpointMessage(seq uint64, hash string, t time.Time) []byte {
	return checkpointMessage(seq, hash, t)
}

// VerifySignature reports whether c is signed by pub.
func (c *Checkpoint) VerifySignature(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, checkpointMessage(c.Seq, c.Hash, c.Time), c.Signature)
}

func checkpointFromStore(c *store.AuditCheckpoint) *Checkpoint {
	return &Checkpoint{Kind: CheckpointKind, Seq: c.Seq, Hash: c.Hash, Time: c.Time.UTC(), KeyID: c.KeyID, Signature: slices.Clone(c.Signature)}
}

// A CheckpointSink receives every checkpoint the Log signs, after it is
// stored. Exporters that implement it (JSONLExporter, SyslogExporter,
// OTelExporter) get checkpoints in the same queue as records, after the
// records they cover.
type CheckpointSink interface {
	ExportCheckpoint(ctx context.Context, c *Checkpoint) error
}

// ExternalEvidence is what ReadExternal found in a checkpoint file or a
// JSON export.
type ExternalEvidence struct {
	// Checkpoints are the checkpoint lines, in file order.
	Checkpoints []*ExternalCheckpoint
	// Records maps the sequence numbers of exported record lines to their
	// hash and line (the first line for each sequence number).
	Records map[uint64]ExternalRecord
}

// ExternalCheckpoint is a checkpoint line and where it was found.
type ExternalCheckpoint struct {
	Checkpoint
	Line int
}

// ExternalRecord is an exported record's hash and where it was found.
type ExternalRecord struct {
	Hash string
	Line int
}

// maxLine bounds one line of a checkpoint file or export (records with
// payloads can be large).
const maxLine = 64 << 20

// ReadExternal reads a checkpoint file or a JSONL export: checkpoint lines
// (kind "checkpoint") and record lines. Blank lines are skipped; a line
// that is not a JSON object is an error naming the line.
func ReadExternal(r io.Reader) (*ExternalEvidence, error) {
	ev := &ExternalEvidence{Records: map[uint64]ExternalRecord{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(trimSpace(line)) == 0 {
			continue
		}
		var v struct {
			Kind string `json:"kind"`
			Seq  uint64 `json:"seq"`
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, fmt.Errorf("line %d: not a checkpoint or record: %w", n, err)
		}
		switch v.Kind {
		case CheckpointKind:
			var c ExternalCheckpoint
			if err := json.Unmarshal(line, &c.Checkpoint); err != nil {
				return nil, fmt.Errorf("line %d: checkpoint: %w", n, err)
			}
			c.Line = n
			ev.Checkpoints = append(ev.Checkpoints, &c)
		case "":
			// A record; seq 0 marks a record that was never stored (fail open).
			if _, seen := ev.Records[v.Seq]; v.Seq > 0 && v.Hash != "" && !seen {
				ev.Records[v.Seq] = ExternalRecord{Hash: v.Hash, Line: n}
			}
		default:
			return nil, fmt.Errorf("line %d: unknown kind %q", n, v.Kind)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ev, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Kinds of Problem found by VerifyExternal.
const (
	// ProblemMissing: a record that an external checkpoint (or exported
	// copy) covers is not in the database.
	ProblemMissing = "missing"
	// ProblemDiffers: the database's record differs from what an external
	// checkpoint signed (or from its exported copy).
	ProblemDiffers = "differs"
)

// ExternalReport is the result of VerifyExternal.
type ExternalReport struct {
	// Checkpoints is the number of checkpoint lines checked; Records the
	// number of exported record lines compared.
	Checkpoints, Records int
	// Confirmed is the highest sequence number an external checkpoint
	// confirms (its signed hash is the database's record hash).
	Confirmed uint64
	// LastSeq is the last record in the database.
	LastSeq uint64
	// OK reports that no problem was found.
	OK bool
	// FirstBad is the first problem, nil when OK.
	FirstBad *Problem
}

// ErrNoCheckpoints reports evidence without a single checkpoint line.
var ErrNoCheckpoints = errors.New("audit: no checkpoint lines in the file (is it the checkpoint file or an export of a gateway that signs checkpoints?)")

// VerifyExternal checks the stored chain against evidence kept outside the
// database: checkpoints published to the checkpoint file or an export,
// and exported record lines. Every checkpoint must be signed by pub (a
// key the operator holds outside the data directory); the database must
// hold every record a checkpoint or an exported record line covers, with
// the same hash at each checkpoint's sequence number and each exported
// record's. The first problem in sequence order is reported: a
// checkpoint not signed by pub (ProblemCheckpoint), a missing record
// (ProblemMissing: the log was truncated, with its own checkpoints) or a
// differing one (ProblemDiffers: the chain was rewritten, even if it was
// re-signed with a stolen key). It does not check the chain's internal
// consistency: run Verify as well. The error is for failures to read the
// store and for evidence without checkpoints (ErrNoCheckpoints).
func VerifyExternal(ctx context.Context, st store.AuditLog, ev *ExternalEvidence, pub ed25519.PublicKey, source string) (*ExternalReport, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("audit: verify: a public key is needed to check external checkpoints")
	}
	if len(ev.Checkpoints) == 0 {
		return nil, ErrNoCheckpoints
	}
	rep := &ExternalReport{Checkpoints: len(ev.Checkpoints), Records: len(ev.Records)}
	keyID := KeyID(pub)
	var problems []*Problem
	add := func(p *Problem) { problems = append(problems, p) }
	// By sequence number; the first signed line wins, a second one with
	// another hash is a problem in itself.
	cps := map[uint64]*ExternalCheckpoint{}
	var maxCP *ExternalCheckpoint
	for _, c := range ev.Checkpoints {
		where := fmt.Sprintf("%s line %d", source, c.Line)
		switch {
		case c.KeyID != keyID && !c.VerifySignature(pub):
			add(&Problem{Seq: c.Seq, Kind: ProblemCheckpoint, Detail: fmt.Sprintf("%s is not signed by the given public key (signed with key %s, the given key is %s)", where, c.KeyID, keyID)})
			continue
		case !c.VerifySignature(pub):
			add(&Problem{Seq: c.Seq, Kind: ProblemCheckpoint, Detail: fmt.Sprintf("%s is not signed by the given public key: the signature does not verify (the checkpoint was altered or forged)", where)})
			continue
		}
		if prev := cps[c.Seq]; prev != nil {
			if prev.Hash != c.Hash {
				add(&Problem{Seq: c.Seq, Kind: ProblemCheckpoint, Detail: fmt.Sprintf("%s and line %d are both signed but sign different hashes for record %d", where, prev.Line, c.Seq)})
			}
			continue
		}
		cps[c.Seq] = c
		if maxCP == nil || c.Seq > maxCP.Seq {
			maxCP = c
		}
	}
	var maxRec uint64
	for seq := range ev.Records {
		maxRec = max(maxRec, seq)
	}
	describe := func(c *ExternalCheckpoint) string {
		return fmt.Sprintf("checkpoint at seq %d (signed %s, %s line %d)", c.Seq, c.Time.Format(time.RFC3339), source, c.Line)
	}
	// coverer returns the lowest checkpoint at or after seq.
	coverer := func(seq uint64) *ExternalCheckpoint {
		var best *ExternalCheckpoint
		for s, c := range cps {
			if s >= seq && (best == nil || s < best.Seq) {
				best = c
			}
		}
		return best
	}
	missing := func(seq, end uint64) *Problem {
		if c := coverer(seq); c != nil {
			return &Problem{Seq: seq, Kind: ProblemMissing, Detail: fmt.Sprintf("%s covers it, but the database %s", describe(c), end2s(seq, end))}
		}
		if r, ok := ev.Records[seq]; ok {
			return &Problem{Seq: seq, Kind: ProblemMissing, Detail: fmt.Sprintf("its exported copy is in %s line %d, but the database %s", source, r.Line, end2s(seq, end))}
		}
		// Covered by a later exported record only.
		for s := seq + 1; s <= maxRec; s++ {
			if r, ok := ev.Records[s]; ok {
				return &Problem{Seq: seq, Kind: ProblemMissing, Detail: fmt.Sprintf("record %d is exported in %s line %d, but the database %s", s, source, r.Line, end2s(seq, end))}
			}
		}
		return &Problem{Seq: seq, Kind: ProblemMissing, Detail: "the database " + end2s(seq, end)}
	}
	var expect uint64 = 1
	var chainProblem *Problem
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			return nil, fmt.Errorf("audit: verify: reading records: %w", err)
		}
		if r.Seq != expect {
			if r.Seq > expect {
				chainProblem = missing(expect, r.Seq)
			} else {
				chainProblem = &Problem{Seq: r.Seq, Kind: ProblemInserted, Detail: fmt.Sprintf("the database holds a second record with sequence number %d", r.Seq)}
			}
			break
		}
		rep.LastSeq = r.Seq
		expect = r.Seq + 1
		if x, ok := ev.Records[r.Seq]; ok && x.Hash != r.Hash {
			detail := fmt.Sprintf("its exported copy (%s line %d): hash %s exported, %s in the database", source, x.Line, short(x.Hash), short(r.Hash))
			if c := coverer(r.Seq); c != nil {
				detail += "; " + describe(c) + " covers it"
			}
			chainProblem = &Problem{Seq: r.Seq, Kind: ProblemDiffers, Detail: detail}
			break
		}
		if c := cps[r.Seq]; c != nil {
			if c.Hash != r.Hash {
				since := fmt.Sprintf("a record in 1..%d was changed and the chain after it recomputed (no earlier external checkpoint confirms any record)", r.Seq)
				if rep.Confirmed > 0 {
					since = fmt.Sprintf("a record in %d..%d was changed and the chain after it recomputed (record %d is the last one an external checkpoint confirms)", rep.Confirmed+1, r.Seq, rep.Confirmed)
				}
				chainProblem = &Problem{Seq: r.Seq, Kind: ProblemDiffers, Detail: fmt.Sprintf("%s: the checkpoint signed hash %s, the database's record %d has hash %s; %s",
					describe(c), short(c.Hash), r.Seq, short(r.Hash), since)}
				break
			}
			rep.Confirmed = r.Seq
		}
	}
	if chainProblem == nil {
		if maxCP != nil && maxCP.Seq >= expect || maxRec >= expect {
			chainProblem = missing(expect, 0)
		}
	}
	if chainProblem != nil {
		add(chainProblem)
	}
	if len(problems) > 0 {
		rep.FirstBad = slices.MinFunc(problems, func(a, b *Problem) int {
			if a.Seq != b.Seq {
				if a.Seq < b.Seq {
					return -1
				}
				return 1
			}
			return 0
		})
	}
	rep.OK = rep.FirstBad == nil
	return rep, nil
}

// end2s describes where the database's records stop: at a gap before
// next (next > 0), or at its end.
func end2s(seq, next uint64) string {
	if next > 0 {
		return fmt.Sprintf("goes from record %d to record %d", seq-1, next)
	}
	if seq == 1 {
		return "holds no records"
	}
	return fmt.Sprintf("ends at record %d", seq-1)
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	if h == "" {
		return `""`
	}
	return h
}
