package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.Approvals = (*Store)(nil)

const approvalCols = `id, binding, principal, client, session, upstream, tool, arguments, policy_version, policies, reason, status, approver, note, created_at, expires_at, decided_at, consumed_at`

type approvalQuerier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func scanApproval(r scanner) (*store.ApprovalRecord, error) {
	var a store.ApprovalRecord
	var policies string
	var created, expires, decided, consumed int64
	if err := r.Scan(&a.ID, &a.Binding, &a.Principal, &a.Client, &a.Session, &a.Upstream, &a.Tool, &a.Arguments, &a.PolicyVersion, &policies, &a.Reason,
		&a.Status, &a.Approver, &a.Note, &created, &expires, &decided, &consumed); err != nil {
		return nil, err
	}
	if policies != "" {
		if err := json.Unmarshal([]byte(policies), &a.Policies); err != nil {
			return nil, fmt.Errorf("approval %q: stored policies: %w", a.ID, err)
		}
	}
	a.CreatedAt, a.ExpiresAt, a.DecidedAt, a.ConsumedAt = fromTS(created), fromTS(expires), fromTS(decided), fromTS(consumed)
	return &a, nil
}

func getApproval(ctx context.Context, q approvalQuerier, id string) (*store.ApprovalRecord, error) {
	a, err := scanApproval(q.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id = ?`, id))
	if err != nil {
		return nil, wrap(fmt.Sprintf("approval %q", id), err)
	}
	return a, nil
}

func listApprovals(ctx context.Context, q approvalQuerier, what, query string, args ...any) ([]*store.ApprovalRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+approvalCols+` FROM approvals `+query, args...)
	if err != nil {
		return nil, wrap(what, err)
	}
	defer rows.Close()
	var out []*store.ApprovalRecord
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, wrap(what, err)
		}
		out = append(out, a)
	}
	return out, wrap(what, rows.Err())
}

// CreateApproval implements store.Approvals. The lookup of a pending
// approval with the same binding and the insert share one IMMEDIATE
// transaction, so two concurrent requests yield one pending approval.
func (s *Store) CreateApproval(ctx context.Context, a *store.ApprovalRecord, now time.Time) (*store.ApprovalRecord, bool, error) {
	if err := store.CheckApprovalRecord(a); err != nil {
		return nil, false, err
	}
	policies := ""
	if len(a.Policies) > 0 {
		b, err := json.Marshal(a.Policies)
		if err != nil {
			return nil, false, fmt.Errorf("approval %q: policies: %w", a.ID, err)
		}
		policies = string(b)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, wrap("approval", err)
	}
	defer tx.Rollback()
	existing, err := listApprovals(ctx, tx, "approval", `WHERE binding = ? AND status = ? AND expires_at > ? ORDER BY created_at, id LIMIT 1`, a.Binding, store.ApprovalPending, ts(now))
	if err != nil {
		return nil, false, err
	}
	if len(existing) > 0 {
		return existing[0], false, nil
	}
	var args any // nil arguments are stored as NULL
	if a.Arguments != nil {
		args = a.Arguments
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO approvals (`+approvalCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		a.ID, a.Binding, a.Principal, a.Client, a.Session, a.Upstream, a.Tool, args, a.PolicyVersion, policies, a.Reason,
		a.Status, a.Approver, a.Note, ts(a.CreatedAt), ts(a.ExpiresAt), ts(a.DecidedAt), ts(a.ConsumedAt))
	if err != nil {
		return nil, false, wrap(fmt.Sprintf("approval %q", a.ID), err)
	}
	stored, err := getApproval(ctx, tx, a.ID)
	if err != nil {
		return nil, false, err
	}
	if err := tx.Commit(); err != nil {
		return nil, false, wrap("approval", err)
	}
	return stored, true, nil
}

// GetApproval implements store.Approvals.
func (s *Store) GetApproval(ctx context.Context, id string) (*store.ApprovalRecord, error) {
	return getApproval(ctx, s.db, id)
}

// FindApprovals implements store.Approvals.
func (s *Store) FindApprovals(ctx context.Context, binding string) ([]*store.ApprovalRecord, error) {
	return listApprovals(ctx, s.db, "approvals", `WHERE binding = ? ORDER BY created_at DESC, id DESC`, binding)
}

// PendingApprovals implements store.Approvals.
func (s *Store) PendingApprovals(ctx context.Context, now time.Time) ([]*store.ApprovalRecord, error) {
	return listApprovals(ctx, s.db, "pending approvals", `WHERE status = ? AND expires_at > ? ORDER BY created_at, id`, store.ApprovalPending, ts(now))
}

// changeApproval runs a conditional UPDATE (a compare-and-set on status
// and expiry) and returns the record after it; when no row changed it
// returns the record with ErrApprovalState.
func (s *Store) changeApproval(ctx context.Context, id, query string, args ...any) (*store.ApprovalRecord, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap("approval", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return nil, wrap(fmt.Sprintf("approval %q", id), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, wrap(fmt.Sprintf("approval %q", id), err)
	}
	a, err := getApproval(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap("approval", err)
	}
	if n == 0 {
		return a, fmt.Errorf("approval %q is %s (expires %s): %w", id, a.Status, a.ExpiresAt.UTC().Format(time.RFC3339), store.ErrApprovalState)
	}
	return a, nil
}

// DecideApproval implements store.Approvals.
func (s *Store) DecideApproval(ctx context.Context, id, status, approver, note string, now time.Time) (*store.ApprovalRecord, error) {
	if status != store.ApprovalApproved && status != store.ApprovalDenied {
		return nil, fmt.Errorf("approval %q: decision %q is neither %q nor %q", id, status, store.ApprovalApproved, store.ApprovalDenied)
	}
	return s.changeApproval(ctx, id, `UPDATE approvals SET status = ?, approver = ?, note = ?, decided_at = ? WHERE id = ? AND status = ? AND expires_at > ?`,
		status, approver, note, ts(now), id, store.ApprovalPending, ts(now))
}

// ConsumeApproval implements store.Approvals. The conditional UPDATE lets
// exactly one of several concurrent consumers, in any process, win.
func (s *Store) ConsumeApproval(ctx context.Context, id string, now time.Time) (*store.ApprovalRecord, error) {
	return s.changeApproval(ctx, id, `UPDATE approvals SET status = ?, consumed_at = ? WHERE id = ? AND status = ? AND expires_at > ?`,
		store.ApprovalConsumed, ts(now), id, store.ApprovalApproved, ts(now))
}

// DeleteApprovalsExpiredBefore implements store.Approvals.
func (s *Store) DeleteApprovalsExpiredBefore(ctx context.Context, t time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM approvals WHERE expires_at < ?`, ts(t))
	if err != nil {
		return 0, wrap("expired approvals", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("expired approvals", err)
	}
	return int(n), nil
}
