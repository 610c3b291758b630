package sqlite

import (
	"context"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.GatewayTaskCounter = (*Store)(nil)

// CountGatewayTasks implements store.GatewayTaskCounter.
func (s *Store) CountGatewayTasks(ctx context.Context, now time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM gateway_tasks WHERE expires_at = 0 OR expires_at >= ? GROUP BY status`, now.UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, err
		}
		out[status] = n
	}
	return out, rows.Err()
}
