package main

import "github.com/spf13/cobra"

// installCmd is filled in by the client setup work (internal/install).
func (a *app) installCmd() *cobra.Command {
	return &cobra.Command{Use: "install", Short: "Add activitybi to a Claude client (not built yet)", Hidden: true}
}
