package auditotel_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/audit/auditotel"
	"github.com/mcpgate/mcpgate/store"
)

// otlpReceiver is a minimal OTLP/HTTP logs endpoint counting log records.
type otlpReceiver struct {
	mu      sync.Mutex
	records int
	// checkpoints counts the checkpoint log records (event name
	// mcpgate.audit.checkpoint), which records does not.
	checkpoints int
	seqs        []int64
	service     string
	fail        atomic.Int32 // requests to refuse with 503
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	if o.fail.Load() > 0 {
		o.fail.Add(-1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collogspb.ExportLogsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rl := range req.ResourceLogs {
		for _, a := range rl.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				o.service = a.GetValue().GetStringValue()
			}
		}
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				if lr.GetEventName() == "mcpgate.audit.checkpoint" {
					o.checkpoints++
					continue
				}
				o.records++
				for _, a := range lr.Attributes {
					if a.Key == "mcpgate.audit.seq" {
						o.seqs = append(o.seqs, a.GetValue().GetIntValue())
					}
				}
			}
		}
	}
	o.mu.Unlock()
	resp, _ := proto.Marshal(&collogspb.ExportLogsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(resp)
}

func TestExporter(t *testing.T) {
	recv := &otlpReceiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	recv.fail.Store(1) // the first request fails: the Log retries
	e, err := auditotel.New(context.Background(), &auditotel.Options{Endpoint: srv.URL + "/v1/logs", ServiceName: "gw-test"})
	if err != nil {
		t.Fatal(err)
	}
	// Seven records through a Log, whose Close drains the exporter.
	l, err := audit.New(store.NewAuditMemory(), &audit.Options{KeyPath: filepath.Join(t.TempDir(), "audit.key"), Exporters: []audit.Exporter{e}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		r := &audit.Record{Action: "tools/call", User: "u", Target: fmt.Sprintf("tool-%d", i), Outcome: audit.OutcomeOK}
		if i == 1 {
			r.Decision, r.Outcome = audit.DecisionDeny, audit.OutcomeDenied
		}
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.records != 7 || recv.service != "gw-test" {
		t.Fatalf("receiver got %d records (service %q), want 7", recv.records, recv.service)
	}
	if recv.checkpoints == 0 {
		t.Error("no checkpoint reached the receiver (Close writes a final one)")
	}
	for i, s := range recv.seqs {
		if s != int64(i+1) {
			t.Fatalf("seqs %v", recv.seqs)
		}
	}
}
