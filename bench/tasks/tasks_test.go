// Package tasks benchmarks the gateway's task watcher (issue 17): 1,000
// concurrent tasks started through one gateway, none polled by any
// client, each moving through three working statuses and completing
// after about 8 s at an upstream that suggests a 500 ms pollInterval. The
// gateway (with its SQLite store) and the upstream run in this process
// on loopback Streamable HTTP; the figures are for the process as a
// whole (upstream included). It reports the CPU time and the peak heap,
// RSS and goroutines while the tasks run, and the upstream requests per
// second the watcher made (tasks/get, tasks/list pages, tasks/result)
// against the requests per second 1,000 clients polling tasks/get at the
// pollInterval would make.
//
// Run with:
//
//	go test ./bench/tasks -run '^$' -bench . -benchtime 1x
package tasks

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/tasktest"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

const (
	tasks        = 1000
	pollInterval = 500 * time.Millisecond
)

// methodCounter counts the task requests an upstream receives.
type methodCounter struct {
	h                  http.Handler
	gets, lists, items atomic.Int64
}

func (m *methodCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		switch {
		case bytes.Contains(body, []byte(`"method":"tasks/get"`)):
			m.gets.Add(1)
		case bytes.Contains(body, []byte(`"method":"tasks/list"`)):
			m.lists.Add(1)
		case bytes.Contains(body, []byte(`"method":"tasks/result"`)):
			m.items.Add(1)
		}
	}
	m.h.ServeHTTP(w, r)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func maxRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024 // kilobytes on Linux
}

func BenchmarkWatch1000Tasks(b *testing.B) {
	up := tasktest.New(pollInterval)
	counter := &methodCounter{h: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up.MCP }, nil)}
	upSrv := httptest.NewServer(counter)
	defer upSrv.Close()
	ctx := context.Background()
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "mcpgate.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	prefix := ""
	g, err := gateway.New(&config.Config{Upstreams: []config.Upstream{{Name: "up", URL: upSrv.URL, Prefix: &prefix}}},
		&gateway.Options{Tasks: db, TaskResultKey: filepath.Join(dir, gateway.TaskResultKeyFile)})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	gwSrv := httptest.NewServer(g.Handler())
	defer gwSrv.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gwSrv.URL + "/mcp"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()

	for range b.N {
		runtime.GC()
		cpu0, start := cpuTime(), time.Now()
		var peakHeap uint64
		var peakG int
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapInuse)
				peakG = max(peakG, runtime.NumGoroutine())
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		// Start the tasks, 16 at a time.
		ids := make(chan string, tasks)
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < tasks; i += 16 {
					res, err := cs.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "steps", Arguments: []byte(`{"steps":3,"every_ms":2000}`)}, &mcp.TaskMetadata{TTL: 600000})
					if err != nil {
						b.Error(err)
						return
					}
					ids <- res.Task.TaskID
				}
			}()
		}
		wg.Wait()
		close(ids)
		created := time.Since(start)
		// Wait until the watcher has seen every task end and kept its
		// result (no client polls).
		gets0, lists0, results0 := counter.gets.Load(), counter.lists.Load(), counter.items.Load()
		watchStart := time.Now()
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			recs, err := db.ListGatewayTasks(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			done := 0
			for _, r := range recs {
				if r.Status == "completed" && r.ResultDigest != "" {
					done++
				}
			}
			if done == tasks {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d tasks ended and kept within 2 minutes", done, tasks)
			}
		}
		watched := time.Since(watchStart)
		close(stop)
		<-sampled
		cpu := cpuTime() - cpu0
		gets, lists, results := counter.gets.Load()-gets0, counter.lists.Load()-lists0, counter.items.Load()-results0
		rate := float64(gets+lists+results) / watched.Seconds()
		clients := float64(tasks) / pollInterval.Seconds()
		b.ReportMetric(created.Seconds(), "create-s")
		b.ReportMetric(watched.Seconds(), "watch-s")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(maxRSS())/(1<<20), "max-rss-MiB")
		b.ReportMetric(float64(peakG), "peak-goroutines")
		b.ReportMetric(float64(gets), "tasks/get")
		b.ReportMetric(float64(lists), "tasks/list-pages")
		b.ReportMetric(float64(results), "tasks/result")
		b.ReportMetric(rate, "watcher-req/s")
		b.ReportMetric(clients, "clients-polling-req/s")
	}
}
