package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/spool"
)

// BenchmarkMCPLogEvent is one log_event call through the core's whole /mcp
// handler (cross-origin check, bearer auth, route metrics, then the fast
// path or the go-sdk), called in this process without a network, on a
// session a go-sdk client opened over loopback: what a call costs the
// handler, apart from net/http, TCP and the uploader. "sdk" sends the same
// request with a header the fast path declines and the go-sdk ignores.
// Reports CPU per call (all threads: the go-sdk's goroutines and the
// garbage collector too) and call latency percentiles.
func BenchmarkMCPLogEvent(b *testing.B) {
	for _, path := range []string{"fast", "sdk"} {
		b.Run(path, func(b *testing.B) {
			s := benchIngestServer(b, spool.DurabilityDefault)
			addr, err := s.Listen()
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			tr := &mcp.StreamableClientTransport{Endpoint: "http://" + addr.String() + "/mcp",
				HTTPClient: &http.Client{Transport: bearerTransport{tokA}}, DisableStandaloneSSE: true}
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "b", Version: "1"}, nil).Connect(ctx, tr, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer cs.Close()
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = []byte(logEventBody(strconv.Itoa(i+1),
					`{"activity":"called_tool","activity_id":"bench-`+strconv.Itoa(i)+`","features":{"tool":"activitybi-load","seq":`+strconv.Itoa(i)+`}}`))
			}
			lat := make([]time.Duration, b.N)
			h := s.srv.Handler
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for i := range b.N {
				req := httptest.NewRequest(http.MethodPost, "http://"+addr.String()+"/mcp", bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", fastProto)
				req.Header.Set("Mcp-Session-Id", cs.ID())
				req.Header.Set("Authorization", "Bearer "+tokA)
				if path == "sdk" {
					req.Header.Set(forceSDK[0], forceSDK[1])
				}
				rec := httptest.NewRecorder()
				a := time.Now()
				h.ServeHTTP(rec, req)
				lat[i] = time.Since(a)
				if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"duplicate":false`)) {
					b.Fatalf("HTTP %d: %s", rec.Code, rec.Body.Bytes())
				}
			}
			cpu := processCPU(b) - cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1e3, "cpu-µs/call")
			slices.Sort(lat)
			at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
			b.ReportMetric(at(0.50), "p50-µs")
			b.ReportMetric(at(0.95), "p95-µs")
			b.ReportMetric(at(0.99), "p99-µs")
		})
	}
}
