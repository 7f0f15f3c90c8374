package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/auth"
)

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke HTTP bearer tokens",
		Long: `HTTP clients (/mcp, /v1/events) authenticate with a bearer token, and the
token alone decides which customer's data a request sees. Each token maps to
one customer. The data directory keeps only a hash of each token (in
` + auth.TokensFile + `), so a token is shown once, when it is created.

A running core picks up new and revoked tokens within a second; there is no
need to restart it. A revoked or expired token's open /mcp streams and
sessions end within 2 seconds.`,
	}
	cmd.AddCommand(a.tokenCreateCmd(), a.tokenListCmd(), a.tokenRevokeCmd())
	return cmd
}

func (a *app) tokenCreateCmd() *cobra.Command {
	var customer, expires, note string
	cmd := &cobra.Command{
		Use:   "create --customer NAME [--expires WHEN] [--note TEXT]",
		Short: "Create a token for one customer and print it (once)",
		Long: `Create a token that acts as --customer and print it alone on stdout, so that

    T=$(activitybi token create --customer acme --expires 90d)

captures it. It is shown only this once: the data directory keeps a hash.

--expires takes a duration from now (30d, 12h, 90m, 1d12h), a date (2027-01-31:
valid through that day, UTC) or an RFC 3339 time (2027-01-31T18:00:00Z).
Without it the token is valid until revoked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("customer") {
				return errors.New("--customer is required: name the customer whose data this token may see (e.g. --customer acme)")
			}
			var expiresAt time.Time
			if cmd.Flags().Changed("expires") {
				var err error
				if expiresAt, err = auth.ParseExpiry(expires, time.Now()); err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
			}
			store, err := auth.Open(a.cfg.DataDir)
			if err != nil {
				return err
			}
			tok, info, err := store.Create(customer, expiresAt, note)
			if err != nil {
				return fmt.Errorf("create token: %w", err)
			}
			fmt.Fprintln(a.stdout, tok)
			fmt.Fprintf(a.stderr, "token %s for customer %q, expires %s; it is shown only once — store it now\n",
				info.ID, info.Customer, expiry(info.ExpiresAt))
			return nil
		},
	}
	cmd.Flags().StringVar(&customer, "customer", "", "the customer the token acts as (required)")
	cmd.Flags().StringVar(&expires, "expires", "", "when the token stops working: 30d, 12h, 90m, 2027-01-31 or an RFC 3339 time (default: never)")
	cmd.Flags().StringVar(&note, "note", "", "a reminder of who or what uses the token, shown by token list")
	return cmd
}

func (a *app) tokenListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens: id, customer, state, dates and note (never the secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := auth.Open(a.cfg.DataDir)
			if err != nil {
				return err
			}
			tokens, err := store.List()
			if err != nil {
				return err
			}
			now := time.Now()
			if asJSON {
				type row struct {
					auth.Token
					State string `json:"state"`
				}
				rows := make([]row, len(tokens))
				for i, t := range tokens {
					rows[i] = row{t, t.State(now)}
				}
				return printJSON(a.stdout, rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCUSTOMER\tSTATE\tCREATED\tEXPIRES\tNOTE")
			for _, t := range tokens {
				state := t.State(now)
				if state == auth.StateRevoked {
					state += " " + t.RevokedAt.Format(time.RFC3339)
				}
				// Escaped (termSafe): a token made before C1 controls
				// were refused may hold them, and a terminal obeys them;
				// any may hold bidi controls, which reorder the line.
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, termSafe(t.Customer), state,
					t.CreatedAt.Format(time.RFC3339), expiry(t.ExpiresAt), termSafe(t.Note))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(tokens) == 0 {
				fmt.Fprintf(a.stderr, "no tokens in %s; create one with `activitybi token create --customer NAME`\n", store.Path())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the tokens as a JSON array")
	return cmd
}

func (a *app) tokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: requests with it are refused from now on",
		Long: `Revoke the token with this id (the ID column of ` + "`token list`" + `, which is also
the 10 characters after abi_ in the token itself; the whole token works too). A running core refuses it within a
second, and ends the /mcp streams and sessions it opened within 2 seconds.
Revoking is permanent; revoking a revoked token changes nothing.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("revoke takes one token id (see `activitybi token list`)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := auth.Open(a.cfg.DataDir)
			if err != nil {
				return err
			}
			id := strings.TrimSpace(args[0])
			if rest, ok := strings.CutPrefix(id, auth.Prefix); ok {
				// The whole token was given: its id is the part before the
				// secret. Never echo the secret.
				id, _, _ = strings.Cut(rest, "_")
			}
			if strings.ContainsAny(id, "_ \t\n") || len(id) > 2*auth.IDLen {
				// Not an id, and maybe a token mangled by a paste: the
				// error must not repeat it.
				return fmt.Errorf("that is not a token id: an id is the %d characters after %s (the ID column of `activitybi token list`)", auth.IDLen, auth.Prefix)
			}
			if err := store.Revoke(id); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked token %s; a running core refuses it within a second\n", id)
			return nil
		},
	}
}

// expiry prints an expiry time, or "never".
func expiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}
