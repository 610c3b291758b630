package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.GatewayTasks = (*Store)(nil)

const gatewayTaskCols = `id, principal, client_id, upstream, upstream_task_id, status, status_message, created_at, updated_at, expires_at, grant_id, tool, approval_id,
	profile, upstream_session, upstream_protocol, upstream_init, result_sealed, result_digest, result_size, held_call`

// gatewayTaskUpdateCols are the columns PutGatewayTask replaces on an
// existing task (all but id and created_at).
var gatewayTaskUpdateCols = func() []string {
	var out []string
	for _, c := range splitCols(gatewayTaskCols) {
		if c != "id" && c != "created_at" {
			out = append(out, c)
		}
	}
	return out
}()

func scanGatewayTask(row pgx.Row) (*store.GatewayTask, error) {
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
	_, err := s.pool.Exec(ctx, `INSERT INTO gateway_tasks (`+gatewayTaskCols+`) VALUES (`+params(1, 21)+`)
		ON CONFLICT (id) DO UPDATE SET `+upsertSet(gatewayTaskUpdateCols),
		t.ID, t.Principal, t.ClientID, t.Upstream, t.UpstreamTaskID, t.Status, t.StatusMessage, nanos(t.CreatedAt), nanos(t.UpdatedAt), nanos(t.ExpiresAt), t.Grant, t.Tool, t.ApprovalID,
		t.Profile, t.UpstreamSession, t.UpstreamProtocol, t.UpstreamInit, t.ResultSealed, t.ResultDigest, t.ResultSize, t.HeldCall)
	return wrap("gateway task "+t.ID, err)
}

// GetGatewayTask implements store.GatewayTasks.
func (s *Store) GetGatewayTask(ctx context.Context, id string) (*store.GatewayTask, error) {
	t, err := scanGatewayTask(s.pool.QueryRow(ctx, `SELECT `+gatewayTaskCols+` FROM gateway_tasks WHERE id = $1`, id))
	if err != nil {
		return nil, wrap("gateway task "+id, err)
	}
	return t, nil
}

// FindGatewayTask implements store.GatewayTasks.
func (s *Store) FindGatewayTask(ctx context.Context, upstream, upstreamTaskID string) (*store.GatewayTask, error) {
	t, err := scanGatewayTask(s.pool.QueryRow(ctx, `SELECT `+gatewayTaskCols+` FROM gateway_tasks WHERE upstream = $1 AND upstream_task_id = $2 AND upstream_task_id != ''`, upstream, upstreamTaskID))
	if err != nil {
		return nil, wrap("gateway task of "+upstream, err)
	}
	return t, nil
}

// ListGatewayTasks implements store.GatewayTasks.
func (s *Store) ListGatewayTasks(ctx context.Context, principal string) ([]*store.GatewayTask, error) {
	if principal == "" {
		return queryAll(ctx, s.pool, "gateway tasks", scanGatewayTask, `SELECT `+gatewayTaskCols+` FROM gateway_tasks ORDER BY created_at, id COLLATE "C"`)
	}
	return queryAll(ctx, s.pool, "gateway tasks", scanGatewayTask, `SELECT `+gatewayTaskCols+` FROM gateway_tasks WHERE principal = $1 ORDER BY created_at, id COLLATE "C"`, principal)
}

// DeleteExpiredGatewayTasks implements store.GatewayTasks.
func (s *Store) DeleteExpiredGatewayTasks(ctx context.Context, now time.Time) (int, error) {
	n, err := count(s.pool.Exec(ctx, `DELETE FROM gateway_tasks WHERE expires_at != 0 AND expires_at < $1`, now.UnixNano()))
	return n, wrap("gateway tasks", err)
}

// ListCancelRequestedGatewayTasks implements store.GatewayTasks.
func (s *Store) ListCancelRequestedGatewayTasks(ctx context.Context) ([]*store.GatewayTask, error) {
	return queryAll(ctx, s.pool, "gateway tasks", scanGatewayTask, `SELECT `+gatewayTaskCols+` FROM gateway_tasks WHERE status = 'cancelled' AND status_message = $1`, store.TaskCancelRequested)
}
