package server

// GET /v1/whoami tells a token holder who the server takes it for: the
// token's customer and id. A remote edge asks it so that it can record, next
// to its spool, whose records the spool holds, and ship the spool of an
// earlier token of the same customer (a rotated one) that no edge uses any
// more, without ever shipping another customer's records under its token.
//
// With ?token_id=ID (repeatable, at most maxWhoAmITokenIDs) the answer also
// lists, in same_customer, those of the named tokens that are or were
// (revoked and expired ones included) tokens of the caller's customer: the
// edge has the id of the token an old spool was logged with (it is in the
// spool's directory name), never its secret, and may have never heard the
// server name that token's customer. The answer says nothing about other
// customers' tokens: an id of another customer and an unknown id look the
// same.
//
// The token is checked exactly as POST /v1/events checks it (Server.bearer).

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/activitybi/activitybi/internal/auth"
)

// maxWhoAmITokenIDs bounds the ?token_id= of one request: an edge has a
// spool per token it was ever configured with, a handful.
const maxWhoAmITokenIDs = 100

// WhoAmIResponse is the body of a GET /v1/whoami answer.
type WhoAmIResponse struct {
	Customer string `json:"customer"`
	TokenID  string `json:"token_id"`
	// SameCustomer lists the asked token ids that are (or were) tokens of
	// Customer, in the order asked; absent when none was asked or none is.
	SameCustomer []string `json:"same_customer,omitempty"`
}

// whoami serves GET /v1/whoami.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	customer, ok := s.bearer(w, r)
	if !ok {
		return
	}
	// bearer accepted the token; its principal carries the id.
	p, err := s.opts.VerifyToken(bearerToken(r))
	if err != nil || p.Customer != customer { // revoked in between
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errBody("the token was refused"))
		return
	}
	resp := WhoAmIResponse{Customer: customer, TokenID: p.TokenID}
	if asked := r.URL.Query()["token_id"]; len(asked) > 0 {
		if len(asked) > maxWhoAmITokenIDs {
			writeJSON(w, http.StatusBadRequest, errBody(fmt.Sprintf("at most %d token_id values per request", maxWhoAmITokenIDs)))
			return
		}
		same, err := s.sameCustomer(customer, asked)
		if err != nil {
			s.log.Error("whoami: read the token file", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, errBody("the server cannot read its token file; try again later"))
			return
		}
		resp.SameCustomer = same
	}
	writeJSON(w, http.StatusOK, resp)
}

// sameCustomer returns those of ids that name a token of customer in the
// data directory's token file (the file VerifyToken checks tokens
// against), whatever the token's state. No data directory: none.
func (s *Server) sameCustomer(customer string, ids []string) ([]string, error) {
	if s.opts.DataDir == "" {
		return nil, nil
	}
	store, err := auth.Open(s.opts.DataDir)
	if err != nil {
		return nil, err
	}
	toks, err := store.List()
	if err != nil {
		return nil, err
	}
	var same []string
	for _, id := range ids {
		if slices.Contains(same, id) {
			continue
		}
		if slices.ContainsFunc(toks, func(t auth.Token) bool { return t.ID == id && t.Customer == customer }) {
			same = append(same, id)
		}
	}
	return same, nil
}
