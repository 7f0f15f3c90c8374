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
//
// It logs to stderr only; stdout belongs to the protocol.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
		err = serveHTTP(ctx, *httpAddr, *jsonResp, logger)
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

func serveHTTP(ctx context.Context, addr string, jsonResp bool, logger *slog.Logger) error {
	s := newServer(logger)
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Logger: logger, JSONResponse: jsonResp}))
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
