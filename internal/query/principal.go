package query

import "context"

// PrincipalFrom returns the principal WithPrincipal put in ctx, or "". An
// edge uses it to pass the caller on to the core's engine.
func PrincipalFrom(ctx context.Context) string {
	return principalOf(ctx, "")
}
