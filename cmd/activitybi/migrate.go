package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the warehouse schema",
		Long: `Apply pending warehouse migrations. ` + "`serve`" + ` does this at start too; this
command is for preparing a warehouse ahead of time. It needs the warehouse to
itself: stop the core first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.openWarehouse(cmd.Context(), false)
			if err != nil {
				return err
			}
			applied, err := db.Migrate(cmd.Context())
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if len(applied) > 0 {
				fmt.Fprintf(a.stdout, "applied migrations %v to %s\n", applied, a.cfg.Warehouse.Path)
			} else {
				fmt.Fprintf(a.stdout, "%s is up to date\n", a.cfg.Warehouse.Path)
			}
			return nil
		},
	}
}
