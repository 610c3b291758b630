package postgres

import (
	"context"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.GatewayTaskCounter = (*Store)(nil)

// CountGatewayTasks implements store.GatewayTaskCounter.
func (s *Store) CountGatewayTasks(ctx context.Context, now time.Time) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, COUNT(*) FROM gateway_tasks WHERE expires_at = 0 OR expires_at >= $1 GROUP BY status`, now.UnixNano())
	if err != nil {
		return nil, wrap("gateway tasks", err)
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, wrap("gateway tasks", err)
		}
		out[status] = int(n)
	}
	return out, wrap("gateway tasks", rows.Err())
}
