package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"
)

// Client talks to a local core's admin API: over its socket when Socket is
// set (no token needed), else over TCP with the admin token of Info.
type Client struct {
	Info   CoreInfo
	Socket string
	HTTP   *http.Client // nil = a client with no overall timeout
}

// NewSocketClient returns a client of the core of dataDir over its socket.
func NewSocketClient(dataDir string) *Client {
	path := SocketPath(dataDir)
	return &Client{Socket: path, HTTP: &http.Client{Transport: socketTransport(path)}}
}

func socketTransport(path string) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			// Never talk to a socket another user could have put there.
			if err := checkPrivateDir(filepath.Dir(path)); err != nil {
				return nil, err
			}
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second,
	}
}

func (c *Client) base() string {
	if c.Socket != "" {
		return "http://activitybi-core"
	}
	return c.Info.URL()
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	status, b, err := c.exchange(ctx, method, path, body, 0)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			if status == http.StatusBadRequest {
				return &QueryError{Msg: e.Error}
			}
			return fmt.Errorf("core: %s", e.Error)
		}
		return fmt.Errorf("core: HTTP %d", status)
	}
	return decodeAnswer(b, out)
}

// exchange sends body (nil: none) as JSON to the core and returns the
// answer's status and body, at most limit bytes of it (0: all). A core
// that cannot be reached is an *UnreachableError.
func (c *Client) exchange(ctx context.Context, method, path string, body any, limit int64) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		// Without HTML escaping: json.Marshal writes each '<', '>' and '&'
		// as six bytes (\u003c), so a dataset spec full of them passed the
		// socket's limit, and the core's spec limit, long before the size
		// the person was told about.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			return 0, nil, err
		}
		r = &b
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base()+path, r)
	if err != nil {
		return 0, nil, err
	}
	if c.Socket == "" {
		req.Header.Set("Authorization", "Bearer "+c.Info.Token)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, &UnreachableError{Err: err}
	}
	defer resp.Body.Close()
	var rd io.Reader = resp.Body
	if limit > 0 {
		rd = io.LimitReader(resp.Body, limit)
	}
	b, err := io.ReadAll(rd)
	return resp.StatusCode, b, err
}

// decodeAnswer decodes a core's JSON answer, keeping big integers exact.
func decodeAnswer(b []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(out)
}

// UnreachableError means the core did not answer (stale core.json).
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return "core unreachable: " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// QueryError is a refused or failed query: the analyst's to fix.
type QueryError struct{ Msg string }

func (e *QueryError) Error() string { return e.Msg }

// SQL runs analyst SQL on the core.
func (c *Client) SQL(ctx context.Context, sql string, maxRows int) (*WireTable, error) {
	var t WireTable
	if err := c.do(ctx, http.MethodPost, "/v1/sql", SQLRequest{SQL: sql, MaxRows: maxRows}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Status returns the core's status.
func (c *Client) Status(ctx context.Context) (*StatusResponse, error) {
	var s StatusResponse
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Healthy reports whether the core answers /healthz within a second.
func (c *Client) Healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var v map[string]any
	return c.do(ctx, http.MethodGet, "/healthz", nil, &v) == nil
}

// Shutdown asks the core to stop gracefully (drain, then exit) and returns
// its pid.
func (c *Client) Shutdown(ctx context.Context) (int, error) {
	var v struct {
		PID int `json:"pid"`
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := c.do(ctx, http.MethodPost, "/v1/shutdown", struct{}{}, &v)
	return v.PID, err
}
