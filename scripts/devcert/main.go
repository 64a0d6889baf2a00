// Command devcert makes (once) the development certificate that signs
// attestations under `make run`, and prints the two environment variables
// that use it: `eval "$(go run ./scripts/devcert var/signing)"`.
package main

import (
	"fmt"
	"os"

	"github.com/aptflow/aptflow/internal/devcert"
)

func main() {
	dir := "var/signing"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	f, err := devcert.Ensure(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devcert:", err)
		os.Exit(1)
	}
	fmt.Printf("export ATTESTATION_SIGN_CERT=%q ATTESTATION_SIGN_KEY=%q\n", f.Cert, f.Key)
}
