package server

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/event"
)

// memAppender keeps appended records in memory (fuzzing runs too many
// inputs for a spool directory each).
type memAppender struct {
	mu   sync.Mutex
	recs []string
}

func (m *memAppender) Append(kind string, p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, kind+" "+string(p))
	return nil
}

func (m *memAppender) AppendBatch(kind string, ps [][]byte) error {
	for _, p := range ps {
		m.Append(kind, p)
	}
	return nil
}

// FuzzToolArguments: any arguments give either an error and nothing
// written, or exactly one record that decodes and belongs to the
// connection's customer.
func FuzzToolArguments(f *testing.F) {
	for _, s := range []string{
		`{"activity":"called_tool","features":{"tool":"Bash"}}`,
		`{"activity":"called_tool","ts":"2026-11-20T10:00:00Z","revenue_impact":-1.5,"link":"https://x.y/z","activity_id":"a"}`,
		`{"activity":"called_tool","customer":"bob"}`,
		`{"subject":"user","metric":"prefers_language","value":"go"}`,
		`{"subject":"user","metric":"m","value":{"a":[1,2]},"provenance_query_hash":"0123456789abcdef"}`,
		`null`, `[]`, `{}`, `{"activity":7}`, `"x"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		app := &memAppender{}
		tl := &tools{opts: MCPOptions{Appender: app, Identity: FixedIdentity("alice"), Source: "mcp", Recent: NewRecentIDs(10)}}
		for _, tool := range []struct {
			name string
			f    toolFunc
		}{{"log_event", tl.logEvent}, {"log_insight", tl.logInsight}} {
			before := len(app.recs)
			req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: tool.name, Arguments: json.RawMessage(raw)}}
			_, err := tool.f(context.Background(), req, "alice")
			written := app.recs[before:]
			if err != nil {
				if len(written) != 0 {
					t.Fatalf("%s: error %v but %d records written", tool.name, err, len(written))
				}
				continue
			}
			if len(written) != 1 {
				t.Fatalf("%s: %d records written for one call", tool.name, len(written))
			}
			kind, payload, _ := cut(written[0])
			switch kind {
			case "event":
				e, err := event.Decode([]byte(payload))
				if err != nil || e.Customer != "alice" {
					t.Fatalf("written event %s: %v", payload, err)
				}
			case "insight":
				x, err := event.DecodeInsight([]byte(payload))
				if err != nil || x.Customer != "alice" {
					t.Fatalf("written insight %s: %v", payload, err)
				}
			default:
				t.Fatalf("kind %q", kind)
			}
		}
	})
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
