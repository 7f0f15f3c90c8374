package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/activitybi/activitybi/internal/config"
)

func (a *app) configCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration and where each value came from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
			for _, k := range config.Keys() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", k, a.cfg.Show(k), a.cfg.Sources[k])
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			file := a.cfg.File
			if file == "" {
				file = "(none; " + config.DefaultConfigFile() + " is read when it exists)"
			}
			fmt.Fprintf(a.stdout, "\nconfig file: %s\nspool: %s\n", file, a.cfg.SpoolDir())
			return nil
		},
	}
}
