package main

import "github.com/spf13/cobra"

// tokenCmd is filled in by the tokens work (internal/auth).
func (a *app) tokenCmd() *cobra.Command {
	return &cobra.Command{Use: "token", Short: "Manage HTTP bearer tokens (not built yet)", Hidden: true}
}
