//go:build !linux

package mailpittest

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's: a killed test process may leave its mailpit running there.
func dieWithParent(*exec.Cmd) {}
