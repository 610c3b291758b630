package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/mcp"
)

// benchPolicies are three Cedar policies of the kind a deployment runs:
// one broad permit, a forbid that hides a tool, a forbid on arguments.
const benchPolicies = `permit(principal, action, resource);
forbid(principal, action in Action::"tools", resource == Tool::"ops/run_shell");
forbid(principal, action == Action::"tools/call", resource == Tool::"up/echo") when { context has arguments && context.arguments has text && context.arguments.text == "forbidden" };
`

// BenchmarkGatewayGoverned measures the configuration users run, built
// by internal/app as mcpgate serve builds it: a data directory (so the
// audit log is on, a decided and a completed record per call, with its
// hash chain and checkpoints) and three Cedar policies, auth none; for
// each audit sync policy, with 1 and 16 sessions. The upstream, the
// gateway and the client share the process (and the machine's cores).
// Token verification is measured separately (oauth/resource
// BenchmarkTokenVerify).
func BenchmarkGatewayGoverned(b *testing.B) {
	for _, sync := range []string{"always", "group", "os"} {
		for _, sessions := range []int{1, 16} {
			b.Run(fmt.Sprintf("sync=%s/sessions=%d", sync, sessions), func(b *testing.B) {
				up := echoServer()
				upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
				defer upSrv.Close()
				dir := b.TempDir()
				pol := filepath.Join(dir, "policies")
				if err := os.MkdirAll(pol, 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(pol, "bench.cedar"), []byte(benchPolicies), 0o644); err != nil {
					b.Fatal(err)
				}
				prefix := ""
				cfg := &config.Config{
					Upstreams: []config.Upstream{{Name: "up", URL: upSrv.URL, Prefix: &prefix}},
					DataDir:   filepath.Join(dir, "data"),
					Policy:    &config.Policy{Paths: []string{pol}},
					Audit:     &config.Audit{Sync: sync},
				}
				cfg.ApplyDefaults()
				ctx := context.Background()
				a, err := app.New(ctx, cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer a.Close()
				if err := a.Gateway.Start(ctx); err != nil {
					b.Fatal(err)
				}
				gwSrv := httptest.NewServer(a.Gateway.Handler())
				defer gwSrv.Close()

				calls := max(b.N/sessions, 1)
				direct := run(b, upSrv.URL, sessions, calls)
				through := run(b, gwSrv.URL+"/mcp", sessions, calls)
				b.ReportMetric(float64(direct.p50.Microseconds()), "direct-p50-µs")
				b.ReportMetric(float64(through.p50.Microseconds()), "gateway-p50-µs")
				b.ReportMetric(float64(through.p99.Microseconds()), "gateway-p99-µs")
				b.ReportMetric(through.perSecond, "gateway-calls/s")
				b.ReportMetric(through.perSecond/direct.perSecond, "throughput-ratio")
				b.ReportMetric(0, "ns/op") // the metrics above are the result
			})
		}
	}
}
