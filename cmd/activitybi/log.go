package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

func (a *app) openSpool() (*spool.Writer, error) { return a.openSpoolWith(nil) }

// openSpoolWith opens a spool writer counting into m (nil = not counted).
func (a *app) openSpoolWith(m *spool.Metrics) (*spool.Writer, error) {
	d, err := spool.ParseDurability(a.cfg.Durability)
	if err != nil {
		return nil, err
	}
	return spool.Open(spool.Options{
		Dir:             a.cfg.SpoolDir(),
		Durability:      d,
		SegmentMaxBytes: a.cfg.Spool.SegmentMaxBytes,
		SegmentMaxAge:   a.cfg.Spool.SegmentMaxAge,
		FsyncInterval:   a.cfg.Spool.FsyncInterval,
		MaxPending:      a.cfg.Spool.MaxPending,
		Logger:          a.log,
		Metrics:         m,
	})
}

func (a *app) logCmd() *cobra.Command {
	var (
		features []string
		featJSON string
		ts       string
		id       string
		customer string
		anon     string
		revenue  string
		link     string
	)
	cmd := &cobra.Command{
		Use:   "log ACTIVITY [--feature key=value ...]",
		Short: "Log one event from a shell",
		Long: `Log one ActivitySchema event to the spool. It reaches the warehouse when
` + "`activitybi serve`" + ` runs (or the next time it starts).

Features: --feature key=value stores a string; --feature key:=JSON stores a
JSON value (number, true/false, null, object, array), as in httpie.
The event's customer is --customer, else the configured identity.`,
		Example: `  activitybi log called_tool --feature tool=search --feature duration_ms:=412
  activitybi log completed_response --revenue-impact -0.0042 --feature model=claude-sonnet-4-5`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := event.Input{Activity: args[0], ActivityID: id, Customer: customer, AnonymousCustomerID: anon, Link: link}
			feats := map[string]json.RawMessage{}
			if featJSON != "" {
				if err := json.Unmarshal([]byte(featJSON), &feats); err != nil || feats == nil {
					return fmt.Errorf("--features-json: must be a JSON object such as '{\"tool\":\"search\"}'")
				}
			}
			for _, f := range features {
				k, v, err := parseFeature(f)
				if err != nil {
					return err
				}
				feats[k] = v
			}
			b, err := json.Marshal(feats)
			if err != nil {
				return err
			}
			in.Features = b
			if ts != "" {
				t, err := parseTS(ts)
				if err != nil {
					return err
				}
				in.TS = &t
			}
			if revenue != "" {
				r, err := strconv.ParseFloat(revenue, 64)
				if err != nil {
					return fmt.Errorf("--revenue-impact: %q is not a number", revenue)
				}
				in.RevenueImpact = &r
			}
			ev, err := event.Normalize(in, event.Defaults{Customer: a.cfg.Customer, Source: event.SourceCLI})
			if err != nil {
				return err
			}
			payload, err := event.Marshal(&ev)
			if err != nil {
				return err
			}
			w, err := a.openSpool()
			if err != nil {
				return err
			}
			if err := w.Append(upload.KindEvent, payload); err != nil {
				w.Close()
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, ev.ActivityID)
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&features, "feature", "f", nil, "feature key=value (string) or key:=JSON; repeatable")
	f.StringVar(&featJSON, "features-json", "", "all features as one JSON object (merged under --feature)")
	f.StringVar(&ts, "ts", "", "event time, RFC 3339 (default now)")
	f.StringVar(&id, "activity-id", "", "activity id; also an idempotency key (default a new ULID)")
	f.StringVar(&customer, "customer", "", "customer (default the configured identity)")
	f.StringVar(&anon, "anonymous-customer-id", "", "anonymous customer id")
	f.StringVar(&revenue, "revenue-impact", "", "revenue impact in USD (cost as a negative number)")
	f.StringVar(&link, "link", "", "an http(s) link for the event")
	return cmd
}

// parseFeature parses key=value (string) or key:=JSON.
func parseFeature(s string) (string, json.RawMessage, error) {
	if i := strings.Index(s, ":="); i > 0 && (strings.Index(s, "=") == i+1) {
		k, v := s[:i], s[i+2:]
		if !json.Valid([]byte(v)) {
			return "", nil, fmt.Errorf("--feature %s: %q is not valid JSON (use key=value for a string)", k, v)
		}
		return k, json.RawMessage(v), nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", nil, fmt.Errorf("--feature %q: want key=value or key:=JSON", s)
	}
	b, _ := json.Marshal(v)
	return k, b, nil
}

func parseTS(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--ts: %q is not a timestamp (RFC 3339, e.g. 2026-11-25T14:03:00Z; without a zone it is UTC)", s)
}
