package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/artifact"
	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/card"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/query"
	"github.com/activitybi/activitybi/internal/sqltmpl"
)

// Cards renders a ticket's result as a chart card: in the core the
// CardRenderer, in an edge the core over its socket (SocketCards).
type Cards interface {
	RenderCard(ctx context.Context, customer, principal, ticket string, spec json.RawMessage) (*CardResult, error)
	// Artifact reads one of customer's artifacts (a card's PNG or SVG).
	Artifact(ctx context.Context, customer, id string) (*artifact.Meta, []byte, error)
}

// CardResult is a rendered card and where it is kept.
type CardResult struct {
	Ticket   string    `json:"ticket"`
	Spec     card.Spec `json:"spec"`
	PNG      []byte    `json:"png"` // base64 in JSON
	Markdown string    `json:"markdown"`
	Notes    []string  `json:"notes,omitempty"`
	Capped   bool      `json:"capped,omitempty"`
	NoData   bool      `json:"no_data,omitempty"`
	// PNGArtifact and SVGArtifact are the artifact ids of the two
	// pictures; ExpiresAt is when they are removed.
	PNGArtifact string    `json:"png_artifact"`
	SVGArtifact string    `json:"svg_artifact"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Card limits.
const (
	// cardMaxRows is the most result rows a card reads (a card draws
	// aggregates; its own caps are lower still, and say so).
	cardMaxRows = 100_000
	// cardTTL is how long a card's pictures are kept.
	cardTTL = 7 * 24 * time.Hour
	// maxCardArtifactBytes bounds what resources/read returns inline.
	maxCardArtifactBytes = 8 << 20
)

// ErrCardSpec marks a card request that is wrong (spec, kind, ticket
// state); the tool answers it as an input error.
var ErrCardSpec = errors.New("invalid card request")

// CardRenderer is the core's Cards: the ticket engine's result, the card
// renderer, the artifact store, the audit log.
type CardRenderer struct {
	Engine    *query.Engine
	Store     *artifact.Store
	Templates *sqltmpl.Library
	Audit     *audit.Log // required: rendering reads a customer's data
	Metrics   *card.Metrics
	Logger    *slog.Logger
}

var _ Cards = (*CardRenderer)(nil)

// RenderCard draws the ticket's result with spec (empty = the template's
// default card) and keeps the PNG and SVG in the artifact store.
func (r *CardRenderer) RenderCard(ctx context.Context, customer, principal, ticket string, raw json.RawMessage) (res *CardResult, err error) {
	start := time.Now()
	var rows, size int64
	target := ticket
	defer func() {
		outcome := event.OutcomeOK
		detail := ""
		if err != nil {
			outcome = audit.Outcome(ctx, err)
			if errors.Is(err, query.ErrNotFound) {
				outcome = event.OutcomeNotFound
			} else if errors.Is(err, ErrCardSpec) || errors.Is(err, query.ErrInvalidRequest) {
				outcome = event.OutcomeRefused
			}
			detail = err.Error()
		}
		if aerr := r.Audit.Record(event.Audit{Principal: principal, Customer: customer, Action: event.ActionRenderedCard,
			Target: target, Rows: rows, Bytes: size, DurationMS: time.Since(start).Milliseconds(), Outcome: outcome, Detail: detail}); aerr != nil && err == nil {
			// The access was not recorded: it is not served.
			res, err = nil, fmt.Errorf("the card was not served: the audit log could not record it: %w", aerr)
		}
	}()
	tab, tk, err := r.Engine.Table(ctx, customer, ticket, cardMaxRows)
	if err != nil {
		if errors.Is(err, query.ErrNotReady) || errors.Is(err, query.ErrNoResult) {
			return nil, fmt.Errorf("%w: %w", ErrCardSpec, err)
		}
		return nil, err
	}
	target = tk.ID + " " + tk.QueryHash
	rows = int64(len(tab.Rows))
	spec, err := r.spec(raw, tk)
	if err != nil {
		return nil, err
	}
	c, err := card.Render(tab, spec, card.Options{Metrics: r.Metrics})
	if err != nil {
		if errors.Is(err, card.ErrInvalidSpec) {
			return nil, fmt.Errorf("%w: %w", ErrCardSpec, err)
		}
		return nil, err
	}
	exp := time.Now().Add(cardTTL).UTC()
	name := cardFileName(tk)
	pm, err := r.Store.Put(ctx, customer, artifact.Meta{ContentType: "image/png", Kind: "card_png", Name: name + ".png", ExpiresAt: exp}, bytes.NewReader(c.PNG))
	if err != nil {
		return nil, fmt.Errorf("keep the card: %w", err)
	}
	sm, err := r.Store.Put(ctx, customer, artifact.Meta{ContentType: "image/svg+xml", Kind: "card_svg", Name: name + ".svg", ExpiresAt: exp}, bytes.NewReader(c.SVG))
	if err != nil {
		return nil, fmt.Errorf("keep the card: %w", err)
	}
	size = pm.Size + sm.Size
	return &CardResult{Ticket: tk.ID, Spec: c.Spec, PNG: c.PNG, Markdown: c.Markdown, Notes: c.Notes, Capped: c.Capped,
		NoData: c.NoData, PNGArtifact: pm.ID, SVGArtifact: sm.ID, ExpiresAt: exp}, nil
}

// spec is the card spec asked for, or the template's default card.
func (r *CardRenderer) spec(raw json.RawMessage, tk *query.Ticket) (card.Spec, error) {
	if len(bytes.TrimSpace(raw)) > 0 && string(raw) != "null" {
		s, err := card.ParseSpec(raw)
		if err != nil {
			return card.Spec{}, fmt.Errorf("%w: %w", ErrCardSpec, err)
		}
		return s, nil
	}
	s := card.Spec{Kind: card.Kind("table"), Title: tk.Name}
	if r.Templates != nil {
		if t, err := r.Templates.Get(tk.Name); err == nil {
			s = card.Spec{Kind: card.Kind(t.Card.Kind), X: t.Card.X, Y: t.Card.Y, Series: t.Card.Series, Title: cardTitle(t)}
		}
	}
	return s, nil
}

// cardTitle is a template's description up to its first sentence, short.
func cardTitle(t *sqltmpl.Template) string {
	d := t.Description
	if i := strings.IndexAny(d, ".\n"); i > 0 {
		d = d[:i]
	}
	if len(d) > 80 || d == "" {
		return t.Name
	}
	return d
}

func cardFileName(tk *query.Ticket) string {
	n := tk.Name
	if n == "" {
		n = "card"
	}
	return n + "-" + strings.ToLower(tk.ID)
}

// Artifact reads one of customer's artifacts whole (cards are small). The
// read is audited under the principal in ctx (query.WithPrincipal; "mcp"
// when none), whatever its outcome: another customer's id is a not_found.
func (r *CardRenderer) Artifact(ctx context.Context, customer, id string) (m *artifact.Meta, b []byte, err error) {
	start := time.Now()
	principal := query.PrincipalFrom(ctx)
	if principal == "" {
		principal = "mcp"
	}
	defer func() {
		outcome, detail := event.OutcomeOK, ""
		if err != nil {
			outcome, detail = audit.Outcome(ctx, err), err.Error()
			if errors.Is(err, artifact.ErrNotFound) {
				outcome = event.OutcomeNotFound
			}
		}
		if aerr := r.Audit.Record(event.Audit{Principal: principal, Customer: customer, Action: event.ActionFetchedArtifact,
			Target: id, Bytes: int64(len(b)), DurationMS: time.Since(start).Milliseconds(), Outcome: outcome, Detail: detail}); aerr != nil && err == nil {
			// The access was not recorded: it is not served.
			m, b, err = nil, nil, fmt.Errorf("the artifact was not served: the audit log could not record it: %w", aerr)
		}
	}()
	m, body, err := r.Store.Get(ctx, customer, id)
	if err != nil {
		return nil, nil, err
	}
	defer body.Close()
	b, err = io.ReadAll(io.LimitReader(body, maxCardArtifactBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > maxCardArtifactBytes {
		return nil, nil, fmt.Errorf("artifact %s is over %d bytes; download it from the core's /artifacts/%s", id, maxCardArtifactBytes, id)
	}
	return m, b, nil
}

// ---- the render_card tool and the artifact resources

var renderCardFields = []string{"ticket", "card"}

func renderCardTool() *mcp.Tool {
	return &mcp.Tool{
		Name:  "render_card",
		Title: "Draw a chart of a query result",
		Description: `Draw a succeeded ticket's result as a chart card: a PNG you can show, a short markdown summary (key numbers, trend, notes) and a link to the kept picture.
Without card, the template's default card is drawn. card: {"kind": "line|bar|stacked_bar|table|kpi|heatmap", "title": "...", "x": column, "y": [columns], "series": column, "unit": "ms|USD|...", "delta": column (kpi)}. Columns must exist in the result (get_query_status lists them).`,
		Annotations: &mcp.ToolAnnotations{Title: "Draw a chart of a query result", ReadOnlyHint: false, DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(false)},
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "ticket": {"type": "string", "maxLength": 64, "description": "a succeeded ticket from submit_query"},
    "card": {"type": "object", "description": "the card spec; default: the template's card"}
  },
  "required": ["ticket"],
  "additionalProperties": false
}`),
		OutputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {
    "ticket": {"type": "string"},
    "spec": {"type": "object"},
    "markdown": {"type": "string"},
    "notes": {"type": "array", "items": {"type": "string"}},
    "capped": {"type": "boolean"},
    "no_data": {"type": "boolean"},
    "png_uri": {"type": "string"},
    "svg_uri": {"type": "string"},
    "expires_at": {"type": "string", "format": "date-time"}
  },
  "required": ["ticket", "spec", "markdown", "png_uri", "svg_uri"]
}`),
	}
}

// RenderCardResult is render_card's structured content.
type RenderCardResult struct {
	Ticket    string    `json:"ticket"`
	Spec      card.Spec `json:"spec"`
	Markdown  string    `json:"markdown"`
	Notes     []string  `json:"notes,omitempty"`
	Capped    bool      `json:"capped,omitempty"`
	NoData    bool      `json:"no_data,omitempty"`
	PNGURI    string    `json:"png_uri"`
	SVGURI    string    `json:"svg_uri"`
	ExpiresAt time.Time `json:"expires_at"`
}

// artifactScheme is the URI of an artifact as an MCP resource; it is read
// on the same connection, so it is the connection's customer's.
const artifactScheme = "activitybi://artifacts/"

func (t *tools) renderCard(ctx context.Context, req *mcp.CallToolRequest, customer string) (any, error) {
	m, ie := args(req.Params.Arguments, "render_card", renderCardFields)
	if m == nil {
		return nil, ie
	}
	var id string
	ie.str(m, "ticket", &id)
	if id == "" {
		ie.problems = append(ie.problems, "ticket: required (a succeeded ticket from submit_query)")
	}
	spec := m["card"]
	if spec != nil && string(spec) != "null" && jsonKind(spec) != "an object" {
		ie.problems = append(ie.problems, "card: must be an object (a card spec), got "+jsonKind(spec))
	}
	if err := ie.err(); err != nil {
		return nil, err
	}
	c, err := t.opts.Cards.RenderCard(ctx, customer, principal(req), id, spec)
	if err != nil {
		if errors.Is(err, ErrCardSpec) || errors.Is(err, query.ErrInvalidRequest) {
			return nil, &inputError{problems: []string{err.Error()}}
		}
		return nil, queryToolError(err)
	}
	v := RenderCardResult{Ticket: c.Ticket, Spec: c.Spec, Markdown: c.Markdown, Notes: c.Notes, Capped: c.Capped,
		NoData: c.NoData, PNGURI: artifactScheme + c.PNGArtifact, SVGURI: artifactScheme + c.SVGArtifact, ExpiresAt: c.ExpiresAt}
	size := int64(len(c.PNG))
	return richResult{v: v, content: []mcp.Content{
		&mcp.ImageContent{Data: c.PNG, MIMEType: "image/png"},
		&mcp.TextContent{Text: c.Markdown},
		&mcp.ResourceLink{URI: v.PNGURI, Name: c.PNGArtifact + ".png", Title: c.Spec.Title, MIMEType: "image/png", Size: &size},
	}}, nil
}

// richResult is a structured result with its own content blocks.
type richResult struct {
	content []mcp.Content
	v       any
}

// addArtifactResources lets a client read the artifacts its tools linked
// (resources/read of activitybi://artifacts/{id}), as the connection's
// customer.
func (t *tools) addArtifactResources(s *mcp.Server) {
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		Name: "artifact", Title: "activitybi artifact", URITemplate: artifactScheme + "{id}",
		Description: "A picture or file activitybi made for you (a chart card, a query's whole result), by the id render_card or a succeeded ticket's result_uri gave.",
	}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		creq := &mcp.CallToolRequest{Session: nil, Extra: req.Extra}
		customer, err := t.opts.Identity(ctx, creq)
		if err != nil {
			return nil, err
		}
		ctx = query.WithPrincipal(ctx, principal(creq))
		id := strings.TrimPrefix(req.Params.URI, artifactScheme)
		if !artifact.ValidID(id) {
			return nil, mcp.ResourceNotFoundError(req.Params.URI)
		}
		meta, b, err := t.opts.Cards.Artifact(ctx, customer, id)
		if err != nil {
			if errors.Is(err, artifact.ErrNotFound) {
				return nil, mcp.ResourceNotFoundError(req.Params.URI)
			}
			return nil, err
		}
		rc := &mcp.ResourceContents{URI: req.Params.URI, MIMEType: meta.ContentType}
		if textual(meta.ContentType) && utf8.Valid(b) {
			rc.Text = string(b) // a result file or an SVG reads as text
		} else {
			rc.Blob = b
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{rc}}, nil
	})
}

// textual tells whether an artifact's media type is text, sent as text in
// resources/read rather than as base64.
func textual(contentType string) bool {
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	return strings.HasPrefix(ct, "text/") || ct == artifact.ResultContentType || ct == "application/json" ||
		ct == "image/svg+xml"
}

// ---- over the socket (edges)

// CardCall is the body of POST /v1/cards/render and /v1/cards/artifact.
type CardCall struct {
	Customer  string          `json:"customer"`
	Principal string          `json:"principal,omitempty"`
	Ticket    string          `json:"ticket,omitempty"`
	Spec      json.RawMessage `json:"spec,omitempty"`
	Artifact  string          `json:"artifact,omitempty"`
}

// ArtifactAnswer carries an artifact over the socket.
type ArtifactAnswer struct {
	Meta artifact.Meta `json:"meta"`
	Data []byte        `json:"data"`
}

const maxCardCall = 64 << 10

func (s *Server) cardsHandler(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cs := s.opts.Cards
		if cs == nil {
			writeJSON(w, http.StatusServiceUnavailable, errBody("this core renders no cards"))
			return
		}
		var c CardCall
		if msg := decodeSocketCall(w, r, maxCardCall, &c, fmt.Sprintf("; a card spec may have at most %d KiB", card.MaxSpecBytes>>10)); msg != "" || c.Customer == "" {
			if msg == "" {
				msg = "want a JSON CardCall with a customer"
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg, "code": codeInvalid})
			return
		}
		ctx := r.Context()
		if c.Principal != "" {
			ctx = query.WithPrincipal(ctx, c.Principal)
		}
		var out any
		var err error
		switch op {
		case "render":
			out, err = cs.RenderCard(ctx, c.Customer, c.Principal, c.Ticket, c.Spec)
		case "artifact":
			var m *artifact.Meta
			var b []byte
			m, b, err = cs.Artifact(ctx, c.Customer, c.Artifact)
			if err == nil {
				out = ArtifactAnswer{Meta: *m, Data: b}
			}
		}
		if err != nil {
			code, status := codeOf(err)
			switch {
			case errors.Is(err, ErrCardSpec):
				code, status = codeCard, http.StatusBadRequest
			case errors.Is(err, artifact.ErrNotFound):
				code, status = codeNotFound, http.StatusNotFound
			}
			writeJSON(w, status, map[string]string{"error": err.Error(), "code": code})
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// codeCard: the card request was wrong (ErrCardSpec).
const codeCard = "card"

// SocketCards is an edge's Cards: the core renders.
type SocketCards struct{ c *Client }

var _ Cards = (*SocketCards)(nil)

// NewSocketCards reaches the core of dataDir.
func NewSocketCards(dataDir string) *SocketCards { return &SocketCards{c: NewSocketClient(dataDir)} }

func (s *SocketCards) call(ctx context.Context, op string, c CardCall, out any) error {
	err := s.c.doCoded(ctx, "/v1/cards/"+op, c, out)
	var ce *codedError
	if errors.As(err, &ce) && ce.code != "" {
		switch ce.code {
		case codeCard:
			return fmt.Errorf("%w: %s", ErrCardSpec, ce.msg)
		case codeNotFound:
			if op == "artifact" {
				return fmt.Errorf("%w: %s", artifact.ErrNotFound, ce.msg)
			}
		}
		return &remoteQueryError{code: ce.code, msg: ce.msg}
	}
	if err != nil {
		return fmt.Errorf("the core could not answer: %w", err)
	}
	return nil
}

// RenderCard asks the core to render.
func (s *SocketCards) RenderCard(ctx context.Context, customer, principal, ticket string, spec json.RawMessage) (*CardResult, error) {
	var r CardResult
	if err := s.call(ctx, "render", CardCall{Customer: customer, Principal: principal, Ticket: ticket, Spec: spec}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Artifact reads an artifact through the core.
func (s *SocketCards) Artifact(ctx context.Context, customer, id string) (*artifact.Meta, []byte, error) {
	var a ArtifactAnswer
	if err := s.call(ctx, "artifact", CardCall{Customer: customer, Principal: query.PrincipalFrom(ctx), Artifact: id}, &a); err != nil {
		return nil, nil, err
	}
	return &a.Meta, a.Data, nil
}

// bearerCustomer is the customer of a request's bearer token, or of its
// dashboard session when it has no Authorization header (for
// /artifacts/{id} over TCP).
func (s *Server) bearerCustomer(r *http.Request) (string, error) {
	if who, ok := r.Context().Value(requesterKey{}).(*requester); ok {
		return who.customer, who.err
	}
	who := s.requesterOf(r)
	return who.customer, who.err
}

// requester is who asked for an artifact over TCP: the customer and the
// principal the access is audited under, or why there is none.
type requester struct {
	customer, principal string
	err                 error
}

type requesterKey struct{}

func (s *Server) requesterOf(r *http.Request) *requester {
	if s.opts.VerifyToken == nil {
		return &requester{err: errors.New("this core has no tokens")}
	}
	h := r.Header.Get("Authorization")
	if h == "" && s.opts.SessionCustomer != nil {
		if c, err := s.opts.SessionCustomer(r); err == nil {
			return &requester{customer: c, principal: "dashboard"}
		}
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return &requester{err: errors.New("send the token of `activitybi token create` as Authorization: Bearer <token>, or sign in to the dashboard")}
	}
	p, err := s.opts.VerifyToken(tok)
	if err != nil {
		return &requester{err: err}
	}
	return &requester{customer: p.Customer, principal: "token:" + p.TokenID}
}

// auditedArtifacts serves GET /artifacts/{id} with h and records every
// read of a customer's artifact (fetched_artifact, under the token or the
// dashboard session that asked; another customer's id is a not_found).
// The record is written once the answer is, since an artifact is streamed:
// a record that cannot be written is logged and counted by the log.
func (s *Server) auditedArtifacts(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Audit == nil {
			h.ServeHTTP(w, r)
			return
		}
		who := s.requesterOf(r)
		start := time.Now()
		cw := &countingWriter{statusWriter: statusWriter{ResponseWriter: w, code: http.StatusOK}}
		h.ServeHTTP(cw, r.WithContext(context.WithValue(r.Context(), requesterKey{}, who)))
		if who.err != nil {
			return // no customer: nothing of anyone's was read
		}
		outcome := event.OutcomeOK
		switch {
		case cw.code == http.StatusNotFound:
			outcome = event.OutcomeNotFound
		case cw.code >= 500:
			outcome = event.OutcomeError
		case cw.code >= 400:
			outcome = event.OutcomeRefused
		case r.Context().Err() != nil:
			outcome = audit.Outcome(r.Context(), r.Context().Err())
		}
		detail, size := "", cw.n
		if outcome != event.OutcomeOK {
			size = 0 // an error's body, not the artifact
		}
		if r.Method == http.MethodHead {
			detail = "HEAD"
		} else if cw.code != http.StatusOK {
			detail = "HTTP " + strconv.Itoa(cw.code)
		}
		// Coalesced: a dashboard loads the same pictures on every visit.
		_ = s.opts.Audit.Coalesce(event.Audit{Principal: who.principal, Customer: who.customer, Action: event.ActionFetchedArtifact,
			Target: r.PathValue("id"), Bytes: size, DurationMS: time.Since(start).Milliseconds(), Outcome: outcome, Detail: detail})
	}
}

// countingWriter is statusWriter (handle's) that also counts the body's
// bytes.
type countingWriter struct {
	statusWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}
