package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// stdioServer is one server under test in an mcp-stdio run.
type stdioServer struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	Tool string   `json:"tool"`
	Args string   `json:"args"`
	PID  int      `json:"pid"`

	Calls       int               `json:"calls"`
	Errors      map[string]int64  `json:"errors"`
	ErrExamples map[string]string `json:"error_examples,omitempty"`
	Latency     latency           `json:"latency"`
	CallsPerSec float64           `json:"calls_per_sec"`
	// VmRSS after initialize (before warm-up) and after the run, after the
	// same settle time; VmHWM is the kernel's peak RSS of the process.
	RSSStartKB int64   `json:"rss_idle_start_kb"`
	RSSEndKB   int64   `json:"rss_idle_end_kb"`
	RSSPeakKB  int64   `json:"rss_peak_kb"`
	P50Ratio   float64 `json:"p50_vs_floor,omitempty"`
	P99Ratio   float64 `json:"p99_vs_floor,omitempty"`

	env    []string
	tmpl   *argsTemplate
	tmp    string
	stderr *os.File
	cs     *mcp.ClientSession
	seq    int64
	lat    []time.Duration
	busy   time.Duration
	errs   errCounter
}

// stdioReport is what mcp-stdio prints (as a table, or as JSON with --json).
type stdioReport struct {
	Mode            string         `json:"mode"`
	Date            string         `json:"date"`
	Run             string         `json:"run"`
	Calls           int            `json:"calls"`
	Warmup          int            `json:"warmup"`
	Rounds          int            `json:"rounds"`
	ProtocolVersion string         `json:"protocol_version"`
	Floor           string         `json:"floor"`
	Servers         []*stdioServer `json:"servers"`
}

// mcpStdio measures tool-call latency of one or more stdio MCP servers, one
// call in flight, the servers interleaved in rounds so that a noisy machine
// hurts them alike.
//
//	activitybi-load mcp-stdio --server floor=/tmp/mcpfloor --tool floor=noop \
//	  --server 'memory=node bench/node/node_modules/@modelcontextprotocol/server-memory/dist/index.js' \
//	  --env 'memory=MEMORY_FILE_PATH={{tmp}}/memory.jsonl' --tool memory=create_entities \
//	  --args 'memory={"entities":[{"name":"e{{seq}}","entityType":"bench","observations":["o{{seq}}"]}]}'
func mcpStdio(ctx context.Context, args []string, stdout io.Writer) error {
	_, err := runMCPStdio(ctx, args, stdout)
	return err
}

func runMCPStdio(ctx context.Context, args []string, stdout io.Writer) (*stdioReport, error) {
	fs := flag.NewFlagSet("mcp-stdio", flag.ContinueOnError)
	var servers, cmds, tools, argss, envs multiFlag
	fs.Var(&servers, "server", "`NAME=COMMAND LINE` of a server to measure; repeat for several (split like a shell: quotes and backslashes, nothing else)")
	fs.Var(&cmds, "cmd", "`COMMAND LINE` of a server, named after its program; same as --server BASENAME=COMMAND LINE")
	fs.Var(&tools, "tool", "`[NAME=]TOOL` to call; without NAME= it applies to every server that has no tool of its own")
	fs.Var(&argss, "args", "`[NAME=]JSON` arguments template ({{seq}}, {{run}}, {{now}} expand per call; default {})")
	fs.Var(&envs, "env", "`[NAME=]KEY=VALUE` added to the server's environment (which is otherwise this process's); {{tmp}} is the server's own temp dir")
	floor := fs.String("floor", "", "`NAME` of the server the others are compared with (default: the one named floor, else the first)")
	calls := fs.Int("calls", 10000, "measured calls per server")
	warmup := fs.Int("warmup", 500, "unmeasured calls per server before the first round")
	rounds := fs.Int("rounds", 10, "rounds; each round gives every server calls/rounds calls, in a rotating order")
	timeout := fs.Duration("timeout", 30*time.Second, "per call")
	settle := fs.Duration("settle", 500*time.Millisecond, "idle time before reading a server's RSS at the start and at the end")
	proto := fs.String("protocol-version", defaultProtocolVersion, "MCP protocol version to ask for (empty: the SDK's newest)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *calls < 1 || *rounds < 1 || *warmup < 0 {
		return nil, errors.New("--calls and --rounds must be >= 1, --warmup >= 0")
	}
	*rounds = min(*rounds, *calls)

	var list []*stdioServer
	byName := map[string]*stdioServer{}
	addServer := func(name, cmdline string) error {
		argv, err := splitCommandLine(cmdline)
		if err != nil {
			return err
		}
		if name == "" {
			name = filepath.Base(argv[0])
		}
		if byName[name] != nil {
			return fmt.Errorf("two servers named %q (name them with --server NAME=...)", name)
		}
		s := &stdioServer{Name: name, Argv: argv}
		byName[name] = s
		list = append(list, s)
		return nil
	}
	for _, v := range servers {
		name, cmdline, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--server %q: want NAME=COMMAND LINE", v)
		}
		if err := addServer(name, cmdline); err != nil {
			return nil, err
		}
	}
	for _, v := range cmds {
		if err := addServer("", v); err != nil {
			return nil, err
		}
	}
	if len(list) == 0 {
		return nil, errors.New("no server: give --cmd 'COMMAND LINE' or --server NAME=COMMAND LINE")
	}
	// perServer splits "NAME=value" when NAME is a server, else returns "".
	perServer := func(v string) (*stdioServer, string) {
		if name, rest, ok := strings.Cut(v, "="); ok && byName[name] != nil {
			return byName[name], rest
		}
		return nil, v
	}
	defTool, defArgs := "", "{}"
	var defEnv []string
	for _, v := range tools {
		if s, rest := perServer(v); s != nil {
			s.Tool = rest
		} else {
			defTool = rest
		}
	}
	for _, v := range argss {
		if s, rest := perServer(v); s != nil {
			s.Args = rest
		} else {
			defArgs = rest
		}
	}
	for _, v := range envs {
		if s, rest := perServer(v); s != nil {
			s.env = append(s.env, rest)
		} else {
			defEnv = append(defEnv, rest)
		}
	}
	for _, s := range list {
		if s.Tool == "" {
			s.Tool = defTool
		}
		if s.Tool == "" {
			return nil, fmt.Errorf("server %s: no tool (--tool %s=TOOL or --tool TOOL)", s.Name, s.Name)
		}
		if s.Args == "" {
			s.Args = defArgs
		}
		t, err := parseTemplate(s.Args)
		if err != nil {
			return nil, fmt.Errorf("server %s: %w", s.Name, err)
		}
		s.tmpl = t
		s.env = append(append([]string(nil), defEnv...), s.env...)
		for _, e := range s.env {
			if !strings.Contains(e, "=") {
				return nil, fmt.Errorf("server %s: --env %q: want KEY=VALUE", s.Name, e)
			}
		}
	}
	if *floor == "" {
		*floor = list[0].Name
		if byName["floor"] != nil {
			*floor = "floor"
		}
	}
	floorSrv := byName[*floor]
	if floorSrv == nil {
		return nil, fmt.Errorf("--floor %q is not one of the servers", *floor)
	}

	rep := &stdioReport{Mode: "mcp-stdio", Date: time.Now().UTC().Format(time.RFC3339), Run: newRunID(),
		Calls: *calls, Warmup: *warmup, Rounds: *rounds, ProtocolVersion: *proto, Floor: *floor, Servers: list}
	client := mcp.NewClient(&mcp.Implementation{Name: "activitybi-load", Version: "1"},
		&mcp.ClientOptions{Capabilities: &mcp.ClientCapabilities{}})
	defer func() {
		for _, s := range list {
			s.close()
		}
	}()
	for _, s := range list {
		if err := s.start(ctx, client, *proto); err != nil {
			return nil, fmt.Errorf("server %s: %w", s.Name, err)
		}
	}
	sleepCtx(ctx, *settle)
	for _, s := range list {
		s.RSSStartKB = procKB(s.PID, "VmRSS")
	}
	for _, s := range list {
		if err := s.call(ctx, rep.Run, *warmup, *timeout, false); err != nil {
			return nil, err
		}
	}
	per := *calls / *rounds
	for r := 0; r < *rounds; r++ {
		n := per
		if r == *rounds-1 {
			n = *calls - per*(*rounds-1)
		}
		for i := range list {
			s := list[(i+r)%len(list)]
			if err := s.call(ctx, rep.Run, n, *timeout, true); err != nil {
				return nil, err
			}
		}
	}
	sleepCtx(ctx, *settle)
	for _, s := range list {
		s.RSSEndKB = procKB(s.PID, "VmRSS")
		s.RSSPeakKB = procKB(s.PID, "VmHWM")
		s.Errors, s.ErrExamples = s.errs.snapshot()
		s.Latency = summarize(s.lat)
		s.Calls = len(s.lat) + int(sumCounts(s.Errors))
		if s.busy > 0 {
			s.CallsPerSec = float64(s.Calls) / s.busy.Seconds()
		}
	}
	if len(list) > 1 && floorSrv.Latency.P50 > 0 {
		for _, s := range list {
			s.P50Ratio = s.Latency.P50 / floorSrv.Latency.P50
			s.P99Ratio = s.Latency.P99 / floorSrv.Latency.P99
		}
	}
	if *asJSON {
		return rep, writeJSON(stdout, rep)
	}
	rep.print(stdout)
	return rep, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (s *stdioServer) start(ctx context.Context, client *mcp.Client, proto string) error {
	tmp, err := os.MkdirTemp("", "activitybi-load-"+s.Name)
	if err != nil {
		return err
	}
	s.tmp = tmp
	expand := func(v string) string { return strings.ReplaceAll(v, "{{tmp}}", tmp) }
	argv := make([]string, len(s.Argv))
	for i, a := range s.Argv {
		argv[i] = expand(a)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	for _, e := range s.env {
		cmd.Env = append(cmd.Env, expand(e))
	}
	// The server's stderr goes to a file, shown if it fails to start.
	s.stderr, err = os.Create(filepath.Join(tmp, "stderr.log"))
	if err != nil {
		return err
	}
	cmd.Stderr = s.stderr
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cs, err := client.Connect(cctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second},
		&mcp.ClientSessionOptions{ProtocolVersion: proto})
	if err != nil {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
		return fmt.Errorf("connect: %w%s", err, s.stderrTail())
	}
	s.cs = cs
	s.PID = cmd.Process.Pid
	tl, err := cs.ListTools(cctx, nil)
	if err != nil {
		return fmt.Errorf("tools/list: %w", err)
	}
	var names []string
	for _, t := range tl.Tools {
		if t.Name == s.Tool {
			return nil
		}
		names = append(names, t.Name)
	}
	return fmt.Errorf("no tool %q (it has %s)", s.Tool, strings.Join(names, ", "))
}

func (s *stdioServer) stderrTail() string {
	b, _ := os.ReadFile(s.stderr.Name())
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nserver stderr:\n" + string(b)
}

// call makes n sequential calls. Tool errors (IsError) and failed calls are
// counted by kind and left out of the latency; the first failure of a
// server that has stopped answering ends the run.
func (s *stdioServer) call(ctx context.Context, run string, n int, timeout time.Duration, measure bool) error {
	t0 := time.Now()
	for range n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.seq++
		params := &mcp.CallToolParams{Name: s.Tool, Arguments: s.tmpl.render(s.seq, run)}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		a := time.Now()
		res, err := s.cs.CallTool(cctx, params)
		d := time.Since(a)
		cancel()
		kind, msg := "", ""
		switch {
		case err != nil:
			kind, msg = classifyCallErr(err), err.Error()
		case res.IsError:
			kind, msg = "tool_error", toolErrorText(res)
		}
		if kind == "connection_closed" {
			return fmt.Errorf("server %s: %v%s", s.Name, err, s.stderrTail())
		}
		if !measure {
			if kind != "" && kind != "tool_error" {
				return fmt.Errorf("server %s: warm-up call: %s", s.Name, msg)
			}
			continue
		}
		if kind != "" {
			s.errs.add(kind, msg)
			continue
		}
		s.lat = append(s.lat, d)
	}
	if measure {
		s.busy += time.Since(t0)
	}
	return nil
}

func toolErrorText(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			return t.Text
		}
	}
	return "IsError without text"
}

func (s *stdioServer) close() {
	if s.cs != nil {
		s.cs.Close()
		s.cs = nil
	}
	if s.stderr != nil {
		s.stderr.Close()
	}
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}

func (r *stdioReport) print(w io.Writer) {
	fmt.Fprintf(w, "mcp-stdio: %d calls per server after %d warm-up, %d rounds interleaved, one call in flight, protocol %s, run %s\n",
		r.Calls, r.Warmup, r.Rounds, r.ProtocolVersion, r.Run)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\ttool\tcalls\terrors\tp50\tp95\tp99\tmax\tcalls/s\tRSS idle start\tend\tpeak\tp50/floor\tp99/floor\t")
	for _, s := range r.Servers {
		ratio := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fx", v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, s.Tool, s.Calls, sumCounts(s.Errors),
			fmtMS(s.Latency.P50), fmtMS(s.Latency.P95), fmtMS(s.Latency.P99), fmtMS(s.Latency.Max), s.CallsPerSec,
			fmtMB(s.RSSStartKB), fmtMB(s.RSSEndKB), fmtMB(s.RSSPeakKB), ratio(s.P50Ratio), ratio(s.P99Ratio))
	}
	tw.Flush()
	for _, s := range r.Servers {
		for kind, ex := range s.ErrExamples {
			fmt.Fprintf(w, "  %s: %d %s, e.g. %s\n", s.Name, s.Errors[kind], kind, ex)
		}
	}
	fmt.Fprintf(w, "  floor: %s; calls/s is calls over the time spent calling that server; RSS from /proc (VmRSS idle, VmHWM peak)\n", r.Floor)
}
