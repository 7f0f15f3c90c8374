// Command activitybi turns every interaction with Claude into an
// ActivitySchema activity stream, keeps it in an analytics warehouse and
// answers questions about it. See README.md.
package main

import (
	"os"
)

func main() {
	privateFiles()
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
