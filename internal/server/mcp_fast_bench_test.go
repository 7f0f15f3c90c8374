package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
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
			s, addr, ctx := runBenchServer(b)
			cs := benchSession(b, ctx, addr)
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

// BenchmarkMCPLogEventHTTP is the same call over real loopback TCP: c
// workers, each with one persistent HTTP/1.1 connection and one call in
// flight, write pre-encoded requests and read the answers with
// http.ReadResponse. Client and core share this process, and there is no
// uploader: calls/s and CPU per call are what the /mcp path, net/http and
// TCP cost with a client beside them — the capacity of the intake alone,
// which `activitybi-load mcp-http --raw` against `activitybi serve`
// measures with the uploader loading the rows (bench/mcp.md).
func BenchmarkMCPLogEventHTTP(b *testing.B) {
	for _, path := range []string{"fast", "sdk"} {
		for _, c := range []int{8, 64} {
			b.Run(path+"/c"+strconv.Itoa(c), func(b *testing.B) {
				_, addr, ctx := runBenchServer(b)
				cs := benchSession(b, ctx, addr)
				head := "POST /mcp HTTP/1.1\r\nHost: " + addr.String() + "\r\nContent-Type: application/json\r\n" +
					"Accept: application/json, text/event-stream\r\nMcp-Protocol-Version: " + fastProto + "\r\nMcp-Session-Id: " + cs.ID() +
					"\r\nAuthorization: Bearer " + tokA + "\r\n"
				if path == "sdk" {
					head += forceSDK[0] + ": " + forceSDK[1] + "\r\n"
				}
				reqs := make([][]byte, b.N)
				for i := range reqs {
					body := logEventBody(strconv.Itoa(i+1), `{"activity":"called_tool","activity_id":"bench-`+strconv.Itoa(i)+`","features":{"tool":"activitybi-load","seq":`+strconv.Itoa(i)+`}}`)
					reqs[i] = []byte(head + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
				}
				lat := make([]time.Duration, b.N)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				cpu0 := processCPU(b)
				start := time.Now()
				for range c {
					wg.Add(1)
					go func() {
						defer wg.Done()
						conn, err := net.Dial("tcp", addr.String())
						if err != nil {
							b.Error(err)
							return
						}
						defer conn.Close()
						br := bufio.NewReader(conn)
						for {
							i := int(next.Add(1)) - 1
							if i >= len(reqs) {
								return
							}
							a := time.Now()
							if _, err := conn.Write(reqs[i]); err != nil {
								b.Error(err)
								return
							}
							resp, err := http.ReadResponse(br, nil)
							if err != nil {
								b.Error(err)
								return
							}
							out, err := io.ReadAll(resp.Body)
							resp.Body.Close()
							lat[i] = time.Since(a)
							if err != nil || resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"duplicate":false`)) {
								b.Errorf("HTTP %d %v: %s", resp.StatusCode, err, out)
								return
							}
						}
					}()
				}
				wg.Wait()
				el := time.Since(start)
				cpu := processCPU(b) - cpu0
				b.StopTimer()
				b.ReportMetric(float64(b.N)/el.Seconds(), "calls/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1e3, "cpu-µs/call")
				slices.Sort(lat)
				at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
				b.ReportMetric(at(0.50), "p50-µs")
				b.ReportMetric(at(0.99), "p99-µs")
			})
		}
	}
}

// benchSession opens a go-sdk Streamable HTTP session on the server at addr
// with customer A's token, closed when the benchmark ends.
func benchSession(b *testing.B, ctx context.Context, addr net.Addr) *mcp.ClientSession {
	b.Helper()
	tr := &mcp.StreamableClientTransport{Endpoint: "http://" + addr.String() + "/mcp",
		HTTPClient: &http.Client{Transport: bearerTransport{tokA}}, DisableStandaloneSSE: true}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "b", Version: "1"}, nil).Connect(ctx, tr, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}
