package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client talks to a local core's admin API.
type Client struct {
	Info CoreInfo
	HTTP *http.Client // nil = a client with no overall timeout
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Info.URL()+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Info.Token)
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &UnreachableError{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			if resp.StatusCode == http.StatusBadRequest {
				return &QueryError{Msg: e.Error}
			}
			return fmt.Errorf("core: %s", e.Error)
		}
		return fmt.Errorf("core: HTTP %d", resp.StatusCode)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep big integers exact
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
