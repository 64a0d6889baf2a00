package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill a child if the bench dies without
// stopping it (a kill -9, a panic), so no mailpit or aptflow is left behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
