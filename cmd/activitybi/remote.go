package main

import (
	"context"
	"errors"
)

func (a *app) runRemoteEdge(ctx context.Context, o edgeOptions) error {
	return errors.New("--remote is not built yet")
}
