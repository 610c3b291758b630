package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.GatewayTasks = (*Store)(nil)

const gatewayTaskCols = `id, principal, client_id, upstream, upstream_task_id, status, status_message, created_at, updated_at, expires_at, grant_id, tool, approval_id,
	profile, upstream_session, upstream_protocol, upstream_init, result_sealed, result_digest, result_size, held_call`

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func scanGatewayTask(row interface{ Scan(...any) error }) (*store.GatewayTask, error) {
	var t store.GatewayTask
	var created, updated, expires int64
	if err := row.Scan(&t.ID, &t.Principal, &t.ClientID, &t.Upstream, &t.UpstreamTaskID, &t.Status, &t.StatusMessage, &created, &updated, &expires, &t.Grant, &t.Tool, &t.ApprovalID,
		&t.Profile, &t.UpstreamSession, &t.UpstreamProtocol, &t.UpstreamInit, &t.ResultSealed, &t.ResultDigest, &t.ResultSize, &t.HeldCall); err != nil {
		return nil, err
	}
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = fromNanos(created), fromNanos(updated), fromNanos(expires)
	return &t, nil
}

// PutGatewayTask implements store.GatewayTasks.
func (s *Store) PutGatewayTask(ctx context.Context, t *store.GatewayTask) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO gateway_tasks (`+gatewayTaskCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET principal=excluded.principal, client_id=excluded.client_id, upstream=excluded.upstream,
		upstream_task_id=excluded.upstream_task_id, status=excluded.status, status_message=excluded.status_message,
		updated_at=excluded.updated_at, expires_at=excluded.expires_at, grant_id=excluded.grant_id, tool=excluded.tool, approval_id=excluded.approval_id,
		profile=excluded.profile, upstream_session=excluded.upstream_session, upstream_protocol=excluded.upstream_protocol,
		upstream_init=excluded.upstream_init, result_sealed=excluded.result_sealed, result_digest=excluded.result_digest, result_size=excluded.result_size, held_call=excluded.held_call`,
		t.ID, t.Principal, t.ClientID, t.Upstream, t.UpstreamTaskID, t.Status, t.StatusMessage, nanos(t.CreatedAt), nanos(t.UpdatedAt), nanos(t.ExpiresAt), t.Grant, t.Tool, t.ApprovalID,
		t.Profile, t.UpstreamSession, t.UpstreamProtocol, t.UpstreamInit, t.ResultSealed, t.ResultDigest, t.ResultSize, t.HeldCall)
	return wrap("gateway task "+t.ID, err)
}

// GetGatewayTask implements store.GatewayTasks.
func (s *Store) GetGatewayTask(ctx context.Context, id string) (*store.GatewayTask, error) {
	t, err := scanGatewayTask(s.db.QueryRowContext(ctx, `SELECT `+gatewayTaskCols+` FROM gateway_tasks WHERE id = ?`, id))
	if err != nil {
		return nil, wrap("gateway task "+id, err)
	}
	return t, nil
}

// FindGatewayTask implements store.GatewayTasks.
func (s *Store) FindGatewayTask(ctx context.Context, upstream, upstreamTaskID string) (*store.GatewayTask, error) {
	t, err := scanGatewayTask(s.db.QueryRowContext(ctx, `SELECT `+gatewayTaskCols+` FROM gateway_tasks WHERE upstream = ? AND upstream_task_id = ? AND upstream_task_id != ''`, upstream, upstreamTaskID))
	if err != nil {
		return nil, wrap("gateway task of "+upstream, err)
	}
	return t, nil
}

// ListGatewayTasks implements store.GatewayTasks.
func (s *Store) ListGatewayTasks(ctx context.Context, principal string) ([]*store.GatewayTask, error) {
	var rows *sql.Rows
	var err error
	if principal == "" {
		rows, err = s.db.QueryContext(ctx, `SELECT `+gatewayTaskCols+` FROM gateway_tasks ORDER BY created_at, id`)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT `+gatewayTaskCols+` FROM gateway_tasks WHERE principal = ? ORDER BY created_at, id`, principal)
	}
	if err != nil {
		return nil, wrap("gateway tasks", err)
	}
	defer rows.Close()
	var out []*store.GatewayTask
	for rows.Next() {
		t, err := scanGatewayTask(rows)
		if err != nil {
			return nil, wrap("gateway tasks", err)
		}
		out = append(out, t)
	}
	return out, wrap("gateway tasks", rows.Err())
}

// DeleteExpiredGatewayTasks implements store.GatewayTasks.
func (s *Store) DeleteExpiredGatewayTasks(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM gateway_tasks WHERE expires_at != 0 AND expires_at < ?`, now.UnixNano())
	if err != nil {
		return 0, wrap("gateway tasks", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ListCancelRequestedGatewayTasks implements store.GatewayTasks.
func (s *Store) ListCancelRequestedGatewayTasks(ctx context.Context) ([]*store.GatewayTask, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+gatewayTaskCols+` FROM gateway_tasks WHERE status = 'cancelled' AND status_message = ?`, store.TaskCancelRequested)
	if err != nil {
		return nil, wrap("gateway tasks", err)
	}
	defer rows.Close()
	var out []*store.GatewayTask
	for rows.Next() {
		t, err := scanGatewayTask(rows)
		if err != nil {
			return nil, wrap("gateway tasks", err)
		}
		out = append(out, t)
	}
	return out, wrap("gateway tasks", rows.Err())
}
