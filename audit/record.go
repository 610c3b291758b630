// Package audit is mcpgate's tamper-evident audit log.
//
// Every action the gateway takes or refuses becomes a Record. Records are
// chained: each record's Hash covers its canonical content, its sequence
// number and the Hash of the record before it, so that editing, deleting,
// inserting or reordering stored records breaks the chain. Periodically the
// Log signs the head of the chain with an Ed25519 key (a checkpoint), so
// that rewriting the whole chain after a record is detected too. Verify
// walks the chain and the checkpoints and names the first record that is
// not as it was written.
//
// Arguments and results are recorded as SHA-256 digests of their RFC 8785
// canonical JSON form; the payloads themselves are kept only when
// Options.KeepPayloads is set.
//
// The package knows nothing of HTTP or MCP transports: the gateway builds
// records and calls Log.Append.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/store"
)

// Decisions recorded in Record.Decision.
const (
	DecisionAllow            = "allow"
	DecisionDeny             = "deny"
	DecisionApprovalRequired = "approval_required"
)

// Phases of a tool call recorded in Record.Phase.
const (
	// PhaseDecided is the record written before a tool call is forwarded.
	PhaseDecided = "decided"
	// PhaseCompleted is the record written when its result is known.
	PhaseCompleted = "completed"
)

// Outcomes recorded in Record.Outcome.
const (
	OutcomeOK        = "ok"
	OutcomeError     = "error"
	OutcomeDenied    = "denied"
	OutcomeCancelled = "cancelled"
	OutcomePending   = "pending"
)

// Record is one audit record.
type Record struct {
	// Seq is the position in the chain, from 1; set by Append.
	Seq uint64 `json:"seq"`
	// Time is when the record was appended; set by Append from
	// Options.Clock, in UTC, truncated to the microsecond.
	Time time.Time `json:"time"`
	// User, Client and Session are the principal chain: the end user (token
	// subject), the OAuth client and the MCP session.
	User    string `json:"user,omitzero"`
	Client  string `json:"client,omitzero"`
	Session string `json:"session,omitzero"`
	// Upstream is the upstream server concerned, if any.
	Upstream string `json:"upstream,omitzero"`
	// Action is the MCP method ("tools/call", "resources/read", ...) or
	// event kind ("token.issued", "token.refused", "client.registered",
	// "client.metadata_changed", "revocation", "policy.changed",
	// "config.changed", "task.created", "approval.decided", and the
	// command line's administrative acts "admin.user.added",
	// "admin.tool.approved", "admin.revocation", ...).
	Action string `json:"action"`
	// Target is what was acted on: tool, resource URI, prompt, client id ...
	Target string `json:"target,omitzero"`
	// Decision is DecisionAllow, DecisionDeny, DecisionApprovalRequired, or
	// "" for records that are not decisions.
	Decision string `json:"decision,omitzero"`
	// PolicyVersion is the hash of the policy set that decided.
	PolicyVersion string `json:"policy_version,omitzero"`
	// Policies are the ids of the policies that decided.
	Policies []string `json:"policies,omitempty"`
	// ArgsDigest and ResultDigest are the hex SHA-256 of the RFC 8785
	// canonical form of Args and Result. Append computes them from Args
	// and Result when those are set.
	ArgsDigest   string `json:"args_digest,omitzero"`
	ResultDigest string `json:"result_digest,omitzero"`
	// Args and Result are the call's arguments and result. They are
	// digested always, and stored and exported only when
	// Options.KeepPayloads is set.
	Args   jsontext.Value `json:"args,omitzero"`
	Result jsontext.Value `json:"result,omitzero"`
	// Outcome is OutcomeOK, OutcomeError, OutcomeDenied, ...
	Outcome string `json:"outcome,omitzero"`
	// Error is the error message of a failed action (never a secret).
	Error string `json:"error,omitzero"`
	// LatencyMicros is the action's duration in microseconds.
	LatencyMicros int64 `json:"latency_us,omitzero"`
	// Phase is PhaseDecided or PhaseCompleted for tool calls, "" otherwise.
	Phase string `json:"phase,omitzero"`
	// PrevHash is the Hash of record Seq-1 ("" for record 1); set by Append.
	PrevHash string `json:"prev_hash"`
	// Hash is this record's chain hash; set by Append.
	Hash string `json:"hash"`
}

// Digest returns the hex SHA-256 of the RFC 8785 (JSON Canonicalization
// Scheme) form of v. It fails on invalid JSON, invalid UTF-8 and duplicate
// object member names.
func Digest(v jsontext.Value) (string, error) {
	if len(v) == 0 {
		return "", errors.New("audit: digest of empty JSON value")
	}
	c := v.Clone()
	if err := c.Canonicalize(); err != nil {
		return "", fmt.Errorf("audit: canonicalizing JSON: %w", err)
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// content is the part of a record covered by its hash besides Seq and
// PrevHash. Payloads are covered through their digests.
type content struct {
	V             int      `json:"v"`
	Time          string   `json:"time"`
	User          string   `json:"user,omitzero"`
	Client        string   `json:"client,omitzero"`
	Session       string   `json:"session,omitzero"`
	Upstream      string   `json:"upstream,omitzero"`
	Action        string   `json:"action,omitzero"`
	Target        string   `json:"target,omitzero"`
	Decision      string   `json:"decision,omitzero"`
	PolicyVersion string   `json:"policy_version,omitzero"`
	Policies      []string `json:"policies,omitempty"`
	ArgsDigest    string   `json:"args_digest,omitzero"`
	ResultDigest  string   `json:"result_digest,omitzero"`
	Outcome       string   `json:"outcome,omitzero"`
	Error         string   `json:"error,omitzero"`
	LatencyMicros int64    `json:"latency_us,omitzero"`
	Phase         string   `json:"phase,omitzero"`
}

// canonicalContent returns the RFC 8785 form of r's hashed content.
func canonicalContent(r *store.AuditRecord) ([]byte, error) {
	if b, ok := appendCanonicalContent(make([]byte, 0, 512), r); ok {
		return b, nil
	}
	return canonicalContentJSON(r)
}

// canonicalContentJSON is canonicalContent through the JSON encoder and
// jsontext's canonicalization: the definition appendCanonicalContent
// must match byte for byte (FuzzCanonicalContent checks it).
func canonicalContentJSON(r *store.AuditRecord) ([]byte, error) {
	b, err := json.Marshal(content{
		V: 1, Time: r.Time.UTC().Format(time.RFC3339Nano),
		User: r.User, Client: r.Client, Session: r.Session, Upstream: r.Upstream,
		Action: r.Action, Target: r.Target, Decision: r.Decision,
		PolicyVersion: r.PolicyVersion, Policies: r.Policies,
		ArgsDigest: r.ArgsDigest, ResultDigest: r.ResultDigest,
		Outcome: r.Outcome, Error: r.Error, LatencyMicros: r.LatencyMicros, Phase: r.Phase,
	})
	if err != nil {
		return nil, fmt.Errorf("audit: encoding record: %w", err)
	}
	v := jsontext.Value(b)
	if err := v.Canonicalize(); err != nil {
		return nil, fmt.Errorf("audit: canonicalizing record: %w", err)
	}
	return v, nil
}

// appendCanonicalContent appends the RFC 8785 form of r's hashed content
// to b directly, without encoding and re-sorting a JSON object: the
// members of content in the order of their names, zero ones left out,
// strings escaped as RFC 8785 says. It reports false, and the caller
// takes the JSON encoder's path, when a string is not valid UTF-8 (that
// path fails with its error) or the latency is beyond ±2^53 (RFC 8785
// writes numbers as IEEE 754 doubles, which then round it).
func appendCanonicalContent(b []byte, r *store.AuditRecord) ([]byte, bool) {
	if r.LatencyMicros > 1<<53 || r.LatencyMicros < -(1<<53) {
		return b, false
	}
	for _, s := range [...]string{r.User, r.Client, r.Session, r.Upstream, r.Action, r.Target, r.Decision,
		r.PolicyVersion, r.ArgsDigest, r.ResultDigest, r.Outcome, r.Error, r.Phase} {
		if !utf8.ValidString(s) {
			return b, false
		}
	}
	for _, p := range r.Policies {
		if !utf8.ValidString(p) {
			return b, false
		}
	}
	b = append(b, '{')
	first := true
	member := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	str := func(name, v string) {
		if v != "" {
			member(name)
			b = appendJCSString(b, v)
		}
	}
	// In the order of the member names (RFC 8785 sorts by UTF-16 code
	// units; the names are ASCII).
	str("action", r.Action)
	str("args_digest", r.ArgsDigest)
	str("client", r.Client)
	str("decision", r.Decision)
	str("error", r.Error)
	if r.LatencyMicros != 0 {
		member("latency_us")
		b = strconv.AppendInt(b, r.LatencyMicros, 10)
	}
	str("outcome", r.Outcome)
	str("phase", r.Phase)
	if len(r.Policies) > 0 {
		member("policies")
		b = append(b, '[')
		for i, p := range r.Policies {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJCSString(b, p)
		}
		b = append(b, ']')
	}
	str("policy_version", r.PolicyVersion)
	str("result_digest", r.ResultDigest)
	str("session", r.Session)
	str("target", r.Target)
	member("time")
	b = appendJCSString(b, r.Time.UTC().Format(time.RFC3339Nano))
	str("upstream", r.Upstream)
	str("user", r.User)
	member("v")
	b = append(b, '1')
	return append(b, '}'), true
}

// appendJCSString appends s (valid UTF-8) as an RFC 8785 string: only
// the quotation mark, the reverse solidus and control characters are
// escaped, the latter as \b, \t, \n, \f, \r or \u00xx.
func appendJCSString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const recordDomain = "mcpgate.audit.record.v1\x00"

// contentDigest is the SHA-256 of a record's canonical content.
type contentDigest [sha256.Size]byte

// digestContent returns the SHA-256 of r's canonical content.
func digestContent(r *store.AuditRecord) (contentDigest, error) {
	c, err := canonicalContent(r)
	if err != nil {
		return contentDigest{}, err
	}
	return sha256.Sum256(c), nil
}

// chainHash is the record hash: hex SHA-256 of
//
//	"mcpgate.audit.record.v1" 0x00 || uint64be(seq) || uint32be(len(prev)) || prev || SHA-256(canonical content)
func chainHash(seq uint64, prev string, content contentDigest) string {
	b := make([]byte, 0, len(recordDomain)+8+4+len(prev)+sha256.Size)
	b = append(b, recordDomain...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(prev)))
	b = append(b, prev...)
	b = append(b, content[:]...)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// toStore converts r; payloads are included only when keep is set.
// Strings that are not valid UTF-8 (an upstream's error message, say) are
// stored with each invalid byte sequence replaced by U+FFFD, so that no
// record is lost to its text.
func toStore(r *Record, keep bool) *store.AuditRecord {
	v := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	s := &store.AuditRecord{
		Seq: r.Seq, Time: r.Time,
		User: v(r.User), Client: v(r.Client), Session: v(r.Session),
		Upstream: v(r.Upstream), Action: v(r.Action), Target: v(r.Target),
		Decision: v(r.Decision), PolicyVersion: v(r.PolicyVersion),
		ArgsDigest: v(r.ArgsDigest), ResultDigest: v(r.ResultDigest),
		Outcome: v(r.Outcome), Error: v(r.Error), LatencyMicros: r.LatencyMicros, Phase: v(r.Phase),
		PrevHash: r.PrevHash, Hash: r.Hash,
	}
	for _, p := range r.Policies {
		s.Policies = append(s.Policies, v(p))
	}
	if keep {
		if len(r.Args) > 0 {
			s.Args = append([]byte(nil), r.Args...)
		}
		if len(r.Result) > 0 {
			s.Result = append([]byte(nil), r.Result...)
		}
	}
	return s
}

// FromStore converts a stored record to a Record.
func FromStore(s *store.AuditRecord) *Record {
	r := &Record{
		Seq: s.Seq, Time: s.Time.UTC(),
		User: s.User, Client: s.Client, Session: s.Session,
		Upstream: s.Upstream, Action: s.Action, Target: s.Target,
		Decision: s.Decision, PolicyVersion: s.PolicyVersion,
		ArgsDigest: s.ArgsDigest, ResultDigest: s.ResultDigest,
		Outcome: s.Outcome, Error: s.Error, LatencyMicros: s.LatencyMicros, Phase: s.Phase,
		PrevHash: s.PrevHash, Hash: s.Hash,
	}
	if len(s.Policies) > 0 {
		r.Policies = append([]string(nil), s.Policies...)
	}
	if len(s.Args) > 0 {
		r.Args = jsontext.Value(append([]byte(nil), s.Args...))
	}
	if len(s.Result) > 0 {
		r.Result = jsontext.Value(append([]byte(nil), s.Result...))
	}
	return r
}
