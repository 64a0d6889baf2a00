package harness

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child if its parent dies without
// cleaning up (a kill -9, a panic), so no aptflow or mailpit is left behind.
// A daemon (PostgreSQL started by pg_ctl) is not a child: stop it yourself.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
