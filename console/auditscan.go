package console

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/store"
)

// Bounds of an audit search: it reads at most Scan of the newest
// records (newest first) and returns at most Limit of those that match.
const (
	// DefaultAuditLimit and MaxAuditLimit bound the records returned.
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
	// DefaultAuditScan and MaxAuditScan bound the records read.
	DefaultAuditScan = 20000
	MaxAuditScan     = 200000
)

// auditQuery is a search of the audit log. Empty fields match anything.
type auditQuery struct {
	// Principal matches the user, client or session (case-insensitive
	// substring).
	Principal string
	// Tool matches the target of a record (case-insensitive substring).
	Tool string
	// Action matches the action exactly, or as a prefix when it ends in
	// "*" or ".".
	Action string
	// Decision and Outcome match exactly.
	Decision, Outcome string
	// Since and Until bound the record's time (Until exclusive).
	Since, Until time.Time
	// Limit and Scan are the bounds above.
	Limit, Scan int
	// prefixes, if set, keeps only records whose action starts with one
	// of them and that name a policy version (the history of versions).
	prefixes []string
}

// auditResult is the answer of a search: matching records, newest first.
type auditResult struct {
	Records []*audit.Record `json:"records"`
	// Scanned is how many records were read, from FirstSeq to LastSeq.
	Scanned  int    `json:"scanned"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Truncated reports that older records exist that were not read
	// (the scan bound), or that more records matched than Limit.
	Truncated bool `json:"truncated"`
}

func (q *auditQuery) match(r *audit.Record) bool {
	if q.prefixes != nil && (r.PolicyVersion == "" || !slices.ContainsFunc(q.prefixes, func(p string) bool { return strings.HasPrefix(r.Action, p) })) {
		return false
	}
	if q.Principal != "" && !containsFold(r.User, q.Principal) && !containsFold(r.Client, q.Principal) && !containsFold(r.Session, q.Principal) {
		return false
	}
	if q.Tool != "" && !containsFold(r.Target, q.Tool) {
		return false
	}
	if a := q.Action; a != "" {
		if p, ok := strings.CutSuffix(a, "*"); ok {
			if !strings.HasPrefix(r.Action, p) {
				return false
			}
		} else if strings.HasSuffix(a, ".") {
			if !strings.HasPrefix(r.Action, a) {
				return false
			}
		} else if r.Action != a {
			return false
		}
	}
	if q.Decision != "" && r.Decision != q.Decision {
		return false
	}
	if q.Outcome != "" && r.Outcome != q.Outcome {
		return false
	}
	if !q.Since.IsZero() && r.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !r.Time.Before(q.Until) {
		return false
	}
	return true
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// searchAudit reads the newest q.Scan records of st and returns those
// that match q, newest first, at most q.Limit.
func searchAudit(ctx context.Context, st store.AuditLog, q *auditQuery) (*auditResult, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultAuditLimit
	}
	q.Limit = min(q.Limit, MaxAuditLimit)
	if q.Scan <= 0 {
		q.Scan = DefaultAuditScan
	}
	q.Scan = min(q.Scan, MaxAuditScan)
	res := &auditResult{Records: []*audit.Record{}}
	// The newest matches, kept in a ring of Limit.
	ring := make([]*audit.Record, 0, q.Limit)
	next, matched := 0, 0
	span, err := scanAudit(ctx, st, q.Scan, func(r *audit.Record) {
		if !q.match(r) {
			return
		}
		matched++
		if len(ring) < q.Limit {
			ring = append(ring, r)
			return
		}
		ring[next] = r
		next = (next + 1) % q.Limit
	})
	if err != nil {
		return nil, err
	}
	res.Scanned, res.FirstSeq, res.LastSeq, res.Truncated = span.n, span.first, span.last, span.older
	if matched > q.Limit {
		res.Truncated = true
	}
	// Newest first: the ring from next-1 backwards.
	for i := range ring {
		res.Records = append(res.Records, ring[(next-1-i+2*len(ring))%len(ring)])
	}
	return res, nil
}

// span is what scanAudit read: n records from first to last, and
// whether older ones exist.
type span struct {
	n           int
	first, last uint64
	older       bool
}

// scanAudit calls fn with each of the newest n records of st, oldest
// first (records appended while it reads are left out).
func scanAudit(ctx context.Context, st store.AuditLog, n int, fn func(*audit.Record)) (span, error) {
	var sp span
	last, err := st.LastAudit(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return sp, nil
	}
	if err != nil {
		return sp, err
	}
	from := uint64(1)
	if last.Seq > uint64(n) {
		from = last.Seq - uint64(n) + 1
		sp.older = true
	}
	for sr, err := range st.ReadAudit(ctx, from) {
		if err != nil {
			return sp, err
		}
		if sr.Seq > last.Seq {
			break
		}
		if sp.n == 0 {
			sp.first = sr.Seq
		}
		sp.n++
		sp.last = sr.Seq
		fn(audit.FromStore(sr))
	}
	return sp, nil
}

// minuteCount is the calls and denials of one minute.
type minuteCount struct {
	Minute   time.Time `json:"minute"`
	Calls    int       `json:"calls"`
	Denials  int       `json:"denials"`
	Approval int       `json:"approval_required"`
}

// perMinute counts tool calls (their "decided" records) and denials of
// any request in each of the last n minutes before now, oldest first,
// from the newest records of st (at most DefaultAuditScan).
func perMinute(ctx context.Context, st store.AuditLog, now time.Time, n int) ([]minuteCount, error) {
	end := now.Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-time.Duration(n) * time.Minute)
	out := make([]minuteCount, n)
	for i := range out {
		out[i].Minute = start.Add(time.Duration(i) * time.Minute)
	}
	_, err := scanAudit(ctx, st, DefaultAuditScan, func(r *audit.Record) {
		if r.Time.Before(start) || !r.Time.Before(end) {
			return
		}
		i := int(r.Time.Sub(start) / time.Minute)
		if r.Action == "tools/call" && (r.Phase == audit.PhaseDecided || r.Phase == "") {
			out[i].Calls++
		}
		switch r.Decision {
		case audit.DecisionDeny:
			out[i].Denials++
		case audit.DecisionApprovalRequired:
			out[i].Approval++
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
