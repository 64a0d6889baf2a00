package mailpittest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill mailpit if the test process dies
// without running its cleanups (a -timeout panic, a kill -9), so no server is
// left behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
