// Command mcpfloor is the protocol floor for MCP latency numbers: a go-sdk
// server with one tool, noop, that takes any object and returns an empty
// structured result. Whatever a real tool costs above this is the tool's own
// work; everything up to it is JSON-RPC framing, schema validation and the
// transport. bench/mcp.md compares servers against it with
// `activitybi-load mcp-stdio`.
//
//	mcpfloor                        # stdio (the default)
//	mcpfloor -http 127.0.0.1:8931   # the same tool over Streamable HTTP at /mcp
//	mcpfloor -http 127.0.0.1:8931 -json-response   # ... answering POSTs with JSON, not SSE
//	mcpfloor -http 127.0.0.1:8931 -http-floor      # tools/call answered by net/http alone
//
// -http-floor is the floor of any net/http server at /mcp: sessions are
// opened by the go-sdk as above, but a POSTed tools/call is answered by a
// plain handler that reads the body, finds the request id and writes a
// fixed JSON result, with no MCP, no validation and no work. It is what
// one HTTP request per call costs here (loopback TCP, net/http's parsing,
// its background read, the answer's write), and what `activitybi serve`'s
// /mcp fast path is measured against.
//
// It logs to stderr only; stdout belongs to the protocol.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	httpAddr := flag.String("http", "", "serve Streamable HTTP at this address (path /mcp) instead of stdio")
	jsonResp := flag.Bool("json-response", false, "with -http: answer POSTs with application/json instead of an SSE stream")
	floor := flag.Bool("http-floor", false, "with -http: answer tools/call POSTs with a fixed result from a plain net/http handler")
	prof := flag.String("cpuprofile", "", "write a CPU profile to this file (stopped on SIGTERM or end of input)")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mcpfloor:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *httpAddr != "" {
		err = serveHTTP(ctx, *httpAddr, *jsonResp, *floor, logger)
	} else {
		err = newServer(logger).Run(ctx, &mcp.StdioTransport{})
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "mcpfloor:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// empty is the structured result: it marshals to {}.
type empty struct{}

func newServer(logger *slog.Logger) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpfloor", Version: "1"}, &mcp.ServerOptions{Logger: logger})
	mcp.AddTool(s, &mcp.Tool{Name: "noop", Description: "Does nothing; the MCP protocol floor."},
		func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, empty, error) {
			return nil, empty{}, nil
		})
	return s
}

func serveHTTP(ctx context.Context, addr string, jsonResp, floor bool, logger *slog.Logger) error {
	s := newServer(logger)
	mux := http.NewServeMux()
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Logger: logger, JSONResponse: jsonResp})
	if floor {
		h = floorHandler(h)
	}
	mux.Handle("/mcp", h)
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	logger.Warn("mcpfloor listening", "addr", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// floorHandler answers POSTed tools/call requests itself (see -http-floor)
// and passes everything else to next with its body intact.
func floorHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, ok := callID(body)
		if !ok {
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
			return
		}
		out := make([]byte, 0, 128)
		out = append(out, `{"jsonrpc":"2.0","id":`...)
		out = append(out, id...)
		out = append(out, `,"result":{"content":[{"type":"text","text":"{}"}],"structuredContent":{}}}`...)
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
}

// callID returns the raw id of a tools/call request, or false for anything
// else.
func callID(body []byte) ([]byte, bool) {
	if !bytes.Contains(body, []byte(`"method":"tools/call"`)) {
		return nil, false
	}
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &m) != nil || len(m.ID) == 0 {
		return nil, false
	}
	return m.ID, true
}
