package postgres_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// benchStores are the stores the benchmarks compare: SQLite in a file
// (the default) and PostgreSQL on the test server (a Unix socket, fsync
// off: the figures are the stores' own costs, not a disk's).
func benchStores(b *testing.B) map[string]interface {
	store.Store
	store.AuditChainer
} {
	sq, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sq.Close() })
	pg, err := postgres.Open(context.Background(), pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close() })
	return map[string]interface {
		store.Store
		store.AuditChainer
	}{"sqlite": sq, "postgres": pg}
}

// BenchmarkAuditAppend appends one chained record per operation, as the
// audit writer does for a lone call.
func BenchmarkAuditAppend(b *testing.B) {
	for name, st := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				rec := &store.AuditRecord{Time: time.Now(), Action: "tools/call", Target: "t"}
				err := st.AppendAuditChained(ctx, []*store.AuditRecord{rec}, func(last *store.AuditRecord) error {
					rec.Seq, rec.Hash = 1, fmt.Sprint("h", i)
					if last != nil {
						rec.Seq, rec.PrevHash = last.Seq+1, last.Hash
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokenCheck is the per-request read of a gateway with OAuth:
// is this access token revoked?
func BenchmarkTokenCheck(b *testing.B) {
	for name, st := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			now := time.Now()
			if err := st.RecordAccessToken(ctx, &store.AccessToken{ID: "jti", ClientID: "c", Subject: "s", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if revoked, err := st.IsAccessTokenRevoked(ctx, "jti"); err != nil || revoked {
					b.Fatal(revoked, err)
				}
			}
		})
	}
}

// BenchmarkCodeRedeem creates and redeems an authorization code (two
// writes), the token endpoint's store work.
func BenchmarkCodeRedeem(b *testing.B) {
	for name, st := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			now := time.Now()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h := fmt.Sprint("code", i)
				if err := st.CreateAuthCode(ctx, &store.AuthCode{CodeHash: h, ClientID: "c", ExpiresAt: now.Add(time.Minute)}); err != nil {
					b.Fatal(err)
				}
				if _, err := st.ConsumeAuthCode(ctx, h, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
