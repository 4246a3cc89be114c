// Command ocbuild is the Shipwright step that drives an OpenShift Build.
package main

import (
	"fmt"
	"os"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Println("ocbuild", version)
		return
	}
	fmt.Fprintln(os.Stderr, "ocbuild: not implemented yet")
	os.Exit(2)
}
