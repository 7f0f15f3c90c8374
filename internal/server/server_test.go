package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/upload"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// tableQuerier answers every query with one fixed table, or refuses SQL that
// starts with DROP the way a driver does.
type tableQuerier struct{}

func (tableQuerier) Query(_ context.Context, sql string, _ int) (*warehouse.Table, error) {
	if strings.HasPrefix(sql, "DROP") {
		return nil, &warehouse.UnsafeSQLError{Reason: "DROP is not a read-only statement"}
	}
	return &warehouse.Table{
		Columns: []warehouse.Column{{Name: "n", Type: "BIGINT"}, {Name: "ts", Type: "TIMESTAMP"}},
		Rows:    [][]any{{int64(9007199254740993), time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)}},
	}, nil
}

func (tableQuerier) Stats(context.Context) (warehouse.Stats, error) {
	return warehouse.Stats{StreamRows: 3}, nil
}

func setup(t *testing.T, st upload.Status) (*Client, *Server) {
	t.Helper()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Warehouse: tableQuerier{},
		Uploader: func() upload.Status { return st }, AdminToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &Client{Info: CoreInfo{Addr: addr.String(), Token: tok}}, s
}

func TestCheckListen(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:7314": true, "[::1]:7314": true, "localhost:1": true, "127.0.0.2:80": true,
		"0.0.0.0:7314": false, ":7314": false, "10.0.0.5:80": false, "example.com:80": false, "nonsense": false,
	} {
		err := CheckListen(addr, false)
		if (err == nil) != ok {
			t.Errorf("CheckListen(%q) = %v", addr, err)
		}
		if !ok && addr != "nonsense" && CheckListen(addr, true) != nil {
			t.Errorf("%q refused even with --insecure-listen", addr)
		}
	}
}

// TestCheckListenLocalhostResolves: "localhost" passes only when every
// address it resolves to is loopback. Not parallel: it replaces the lookup.
func TestCheckListenLocalhostResolves(t *testing.T) {
	defer func(f func(string) ([]net.IP, error)) { lookupLocalhost = f }(lookupLocalhost)
	for _, c := range []struct {
		ips  []net.IP
		err  error
		want bool
	}{
		{[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, nil, true},
		{[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.168.1.20")}, nil, false},
		{nil, errors.New("no such host"), false},
		{nil, nil, false},
	} {
		lookupLocalhost = func(string) ([]net.IP, error) { return c.ips, c.err }
		if err := CheckListen("localhost:7314", false); (err == nil) != c.want {
			t.Errorf("localhost -> %v, %v: CheckListen = %v, want ok %v", c.ips, c.err, err, c.want)
		}
		if err := CheckListen("LOCALHOST:7314", true); err != nil {
			t.Errorf("with --insecure-listen: %v", err)
		}
	}
}

func TestSQLNeedsTheAdminToken(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, upload.Status{Started: true})
	bad := *c
	bad.Info.Token = strings.Repeat("0", 64)
	if _, err := bad.SQL(context.Background(), "SELECT 1", 10); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Fatalf("wrong token: %v", err)
	}
	tab, err := c.SQL(context.Background(), "SELECT 1", 10)
	if err != nil {
		t.Fatal(err)
	}
	// Big integers survive JSON exactly; times come as warehouse text.
	if got := tab.Rows[0][0]; got == nil || strings.TrimSpace(strings.Trim(toString(got), `"`)) != "9007199254740993" {
		t.Fatalf("integer changed on the wire: %v", got)
	}
	if got := tab.Rows[0][1]; got != "2026-01-02 03:04:05.6" {
		t.Fatalf("time on the wire: %v", got)
	}
	_, err = c.SQL(context.Background(), "DROP TABLE x", 10)
	var qe *QueryError
	if !errors.As(err, &qe) || !strings.Contains(qe.Msg, "refused") {
		t.Fatalf("refusal: %T %v", err, err)
	}
}

func toString(v any) string {
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		st   upload.Status
		code int
	}{
		"starting": {upload.Status{}, 503},
		"ready":    {upload.Status{Started: true, ConsecutiveFails: 2}, 200},
		"failing":  {upload.Status{Started: true, ConsecutiveFails: 5, LastError: `load: value "alice's secret" refused`}, 503},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, tc.st)
			resp, err := http.Get(c.Info.URL() + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("readyz %d, want %d", resp.StatusCode, tc.code)
			}
			// /readyz needs no token: the uploader's error, which can
			// quote a record, is not in it.
			if strings.Contains(string(body), "secret") {
				t.Fatalf("readyz repeats the uploader's error to anyone: %s", body)
			}
			resp, err = http.Get(c.Info.URL() + "/healthz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("healthz %v %v", resp, err)
			}
			resp.Body.Close()
		})
	}
}

func TestStatusAndMetrics(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, upload.Status{Started: true, Inserted: 7})
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Uploader.Inserted != 7 || st.Warehouse.StreamRows != 3 {
		t.Fatalf("status %+v", st)
	}
	resp, err := http.Get(c.Info.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := new(strings.Builder)
	if _, err := io.Copy(buf, resp.Body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `activitybi_http_requests_total{code="200",route="/v1/status"} 1`) {
		t.Fatalf("metrics lack the status request:\n%s", buf)
	}
}

func TestCoreLockIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unlock, err := LockCore(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A second lock on the same directory (another open file description,
	// as another process would have) is refused with the holder's pid.
	if _, err := LockCore(dir); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := LockCore(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}
