package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/sqltmpl/dataset"
)

// angleSpec is a valid dataset spec of exactly size bytes of compact JSON
// (written without HTML escaping), nearly all of it '<' in the values of an
// "in" filter. encoding/json's default escaping would make every '<' six
// bytes (\u003c).
func angleSpec(t *testing.T, size int) json.RawMessage {
	t.Helper()
	enc := func(vals []string) []byte {
		spec := map[string]any{"cohort": map[string]any{"activity": "called_tool",
			"filters": []any{map[string]any{"feature": "tag", "op": "in", "value": vals}}}}
		var b bytes.Buffer
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		if err := e.Encode(spec); err != nil {
			t.Fatal(err)
		}
		return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	}
	var vals []string
	for len(enc(vals)) < size {
		room := size - len(enc(vals))
		switch {
		case len(vals) > 0 && len(vals[len(vals)-1]) < dataset.MaxValueLen:
			vals[len(vals)-1] += strings.Repeat("<", min(room, dataset.MaxValueLen-len(vals[len(vals)-1])))
		case room >= 4: // ,"<" at least
			vals = append(vals, "<")
		default:
			t.Fatalf("cannot make a spec of exactly %d bytes", size)
		}
	}
	b := enc(vals)
	if len(b) != size || bytes.Count(b, []byte("<")) < size*9/10 {
		t.Fatalf("spec of %d bytes, %d of them '<'; want %d", len(b), bytes.Count(b, []byte("<")), size)
	}
	return b
}

// submitSpec submits spec through ed and returns the tool result.
func submitSpec(t *testing.T, ed *edge, spec json.RawMessage) *mcp.CallToolResult {
	t.Helper()
	res, err := ed.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "submit_query",
		Arguments: map[string]any{"dataset": spec, "wait_seconds": 30}})
	if err != nil {
		t.Fatalf("submit_query: %v\n%s", err, ed.log())
	}
	return res
}

// checkAngleSpecs: a spec of MaxSpecBytes full of '<' runs; one byte more
// is refused by the core's own limit, naming the size the caller sent (not
// an escaped, six times larger one, nor the socket's 256 KiB).
func checkAngleSpecs(t *testing.T, name string, ed *edge) {
	t.Helper()
	res := submitSpec(t, ed, angleSpec(t, dataset.MaxSpecBytes))
	if res.IsError {
		t.Fatalf("%s: a %d-byte spec full of '<' was refused: %s", name, dataset.MaxSpecBytes, toolText(res))
	}
	if st, _ := res.StructuredContent.(map[string]any); st["state"] != "succeeded" {
		t.Errorf("%s: %v", name, res.StructuredContent)
	}
	over := dataset.MaxSpecBytes + 1
	res = submitSpec(t, ed, angleSpec(t, over))
	if want := fmt.Sprintf(" is %d bytes", over); !res.IsError || !strings.Contains(toolText(res), want) {
		t.Errorf("%s: a %d-byte spec: %s; want a refusal saying %q", name, over, toolText(res), want)
	}
}

// TestPayloadsFullOfAngleBracketsKeepTheirSize: what an edge forwards — to
// its core over the socket, to a server through --remote — travels without
// HTML escaping, so the limit that applies is the one the caller is told
// about: a dataset spec at the core's limit full of '<' runs, through a
// local edge and through a remote one, and an event whose feature_json is
// just under its limit, all '<', '>' and '&', is stored through a remote
// edge.
func TestPayloadsFullOfAngleBracketsKeepTheirSize(t *testing.T) {
	t.Parallel()
	local := newEnv(t)
	t.Cleanup(local.stopCore)
	le := local.startEdge()
	waitFor(t, 90*time.Second, func() bool { return server.NewSocketClient(local.dataDir).Healthy(context.Background()) })
	checkAngleSpecs(t, "local edge", le)

	srv := newEnv(t)
	c := srv.startCore()
	defer c.stop(t)
	tok, _, _ := srv.createToken("--customer", "remote-angles")
	ed := srv.startRemoteEdge("http://"+c.info.Addr, tok)
	waitFor(t, 30*time.Second, func() bool {
		res, err := ed.cs.ListTools(context.Background(), nil)
		return err == nil && slices.ContainsFunc(res.Tools, func(tl *mcp.Tool) bool { return tl.Name == "submit_query" })
	})
	checkAngleSpecs(t, "remote edge", ed)

	// {"s":"<>&<>&..."} of MaxFeatureBytes - 1 bytes.
	val := strings.Repeat("<>&", (event.MaxFeatureBytes-1-len(`{"s":""}`))/3+1)[:event.MaxFeatureBytes-1-len(`{"s":""}`)]
	ed.call(t, "log_event", map[string]any{"activity": "called_tool", "activity_id": "angles", "features": map[string]any{"s": val}})
	srv.waitCount(fmt.Sprintf(`SELECT count(*) FROM claude_stream WHERE activity_id = 'angles' AND customer = 'remote-angles' AND length(json_extract_string(feature_json, '$.s')) = %d`, len(val)),
		1, 30*time.Second)
	ed.closeClean(t)
}
