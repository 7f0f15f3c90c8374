package server

import "net/http"

// insights serves POST /v1/insights.
func (s *Server) insights(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotImplemented, errBody("insights are not accepted yet"))
}
