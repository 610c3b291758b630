package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.Approvals = (*Store)(nil)

const approvalCols = `id, binding, principal, client, session, upstream, tool, arguments, policy_version, policies, reason, status, approver, note, created_at, expires_at, decided_at, consumed_at`

func scanApproval(r pgx.Row) (*store.ApprovalRecord, error) {
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

func getApproval(ctx context.Context, q querier, id string) (*store.ApprovalRecord, error) {
	a, err := scanApproval(q.QueryRow(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id = $1`, id))
	if err != nil {
		return nil, wrap(fmt.Sprintf("approval %q", id), err)
	}
	return a, nil
}

// CreateApproval implements store.Approvals. The transaction holds an
// advisory lock on the binding while it looks for a pending approval and
// inserts, so two concurrent requests, in any processes, yield one
// pending approval.
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
	var stored *store.ApprovalRecord
	created := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockXact(ctx, tx, "mcpgate:approval:"+a.Binding); err != nil {
			return wrap("approval", err)
		}
		existing, err := scanApproval(tx.QueryRow(ctx, `SELECT `+approvalCols+` FROM approvals WHERE binding = $1 AND status = $2 AND expires_at > $3 ORDER BY created_at, id COLLATE "C" LIMIT 1`,
			a.Binding, store.ApprovalPending, ts(now)))
		if err == nil {
			stored = existing
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return wrap("approval", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO approvals (`+approvalCols+`) VALUES (`+params(1, 18)+`)`,
			a.ID, a.Binding, a.Principal, a.Client, a.Session, a.Upstream, a.Tool, a.Arguments, a.PolicyVersion, policies, a.Reason,
			a.Status, a.Approver, a.Note, ts(a.CreatedAt), ts(a.ExpiresAt), ts(a.DecidedAt), ts(a.ConsumedAt))
		if err != nil {
			return wrap(fmt.Sprintf("approval %q", a.ID), err)
		}
		stored, err = getApproval(ctx, tx, a.ID)
		created = true
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return stored, created, nil
}

// GetApproval implements store.Approvals.
func (s *Store) GetApproval(ctx context.Context, id string) (*store.ApprovalRecord, error) {
	return getApproval(ctx, s.pool, id)
}

// FindApprovals implements store.Approvals.
func (s *Store) FindApprovals(ctx context.Context, binding string) ([]*store.ApprovalRecord, error) {
	return queryAll(ctx, s.pool, "approvals", scanApproval, `SELECT `+approvalCols+` FROM approvals WHERE binding = $1 ORDER BY created_at DESC, id COLLATE "C" DESC`, binding)
}

// PendingApprovals implements store.Approvals.
func (s *Store) PendingApprovals(ctx context.Context, now time.Time) ([]*store.ApprovalRecord, error) {
	return queryAll(ctx, s.pool, "pending approvals", scanApproval, `SELECT `+approvalCols+` FROM approvals WHERE status = $1 AND expires_at > $2 ORDER BY created_at, id COLLATE "C"`,
		store.ApprovalPending, ts(now))
}

// changeApproval runs a conditional UPDATE (a compare-and-set on status
// and expiry, atomic under the row's lock) and returns the record after
// it; when no row changed it returns the record with ErrApprovalState.
func (s *Store) changeApproval(ctx context.Context, id, query string, args ...any) (*store.ApprovalRecord, error) {
	a, err := scanApproval(s.pool.QueryRow(ctx, query+` RETURNING `+approvalCols, args...))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, wrap(fmt.Sprintf("approval %q", id), err)
	}
	if a, err = getApproval(ctx, s.pool, id); err != nil {
		return nil, err
	}
	return a, fmt.Errorf("approval %q is %s (expires %s): %w", id, a.Status, a.ExpiresAt.UTC().Format(time.RFC3339), store.ErrApprovalState)
}

// DecideApproval implements store.Approvals.
func (s *Store) DecideApproval(ctx context.Context, id, status, approver, note string, now time.Time) (*store.ApprovalRecord, error) {
	if status != store.ApprovalApproved && status != store.ApprovalDenied {
		return nil, fmt.Errorf("approval %q: decision %q is neither %q nor %q", id, status, store.ApprovalApproved, store.ApprovalDenied)
	}
	return s.changeApproval(ctx, id, `UPDATE approvals SET status = $1, approver = $2, note = $3, decided_at = $4 WHERE id = $5 AND status = $6 AND expires_at > $7`,
		status, approver, note, ts(now), id, store.ApprovalPending, ts(now))
}

// ConsumeApproval implements store.Approvals. The conditional UPDATE lets
// exactly one of several concurrent consumers, in any process, win.
func (s *Store) ConsumeApproval(ctx context.Context, id string, now time.Time) (*store.ApprovalRecord, error) {
	return s.changeApproval(ctx, id, `UPDATE approvals SET status = $1, consumed_at = $2 WHERE id = $3 AND status = $4 AND expires_at > $5`,
		store.ApprovalConsumed, ts(now), id, store.ApprovalApproved, ts(now))
}

// DeleteApprovalsExpiredBefore implements store.Approvals.
func (s *Store) DeleteApprovalsExpiredBefore(ctx context.Context, t time.Time) (int, error) {
	n, err := count(s.pool.Exec(ctx, `DELETE FROM approvals WHERE expires_at < $1`, ts(t)))
	return n, wrap("expired approvals", err)
}
