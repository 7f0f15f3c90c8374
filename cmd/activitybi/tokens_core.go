package main

import (
	"time"

	"github.com/activitybi/activitybi/internal/auth"
	"github.com/activitybi/activitybi/internal/server"
)

// tokenVerifier maps bearer tokens to customers for the core's HTTP
// surfaces, from the data directory's token store.
func (a *app) tokenVerifier() (func(string) (server.Principal, error), error) {
	store, err := auth.Open(a.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return func(tok string) (server.Principal, error) {
		t, err := store.Verify(tok, time.Now())
		if err != nil {
			return server.Principal{}, err
		}
		return server.Principal{Customer: t.Customer, TokenID: t.ID, Expires: t.ExpiresAt}, nil
	}, nil
}
