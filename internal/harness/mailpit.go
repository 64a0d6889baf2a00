package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/aptflow/aptflow/internal/mailpittest"
)

// StartMailpit starts the mailpit binary bin on free loopback ports, with
// its database in dataDir and its output in logPath, keeping every message
// (--max 0) and accepting any SMTP login. extra adds flags (such as
// --enable-chaos). It returns once this very mailpit answers: a port found
// free may be taken by another program before mailpit binds it, so it tries
// three times, and it checks the database path the API reports, so that a
// caller never empties another program's mailpit.
func StartMailpit(bin, dataDir, logPath string, extra ...string) (*Process, *mailpittest.Server, error) {
	var last error
	for range 3 {
		smtpAddr, err := FreeAddr()
		if err != nil {
			return nil, nil, err
		}
		httpAddr, err := FreeAddr()
		if err != nil {
			return nil, nil, err
		}
		database := filepath.Join(dataDir, "mailpit.db")
		_ = os.Remove(database)
		args := append([]string{
			"--database", database,
			"--smtp", smtpAddr,
			"--listen", httpAddr,
			"--max", "0", // keep every message: the callers count them
			"--smtp-auth-accept-any",
			"--smtp-auth-allow-insecure",
			"--smtp-disable-rdns",
			"--disable-version-check",
			"--quiet",
		}, extra...)
		cmd := exec.Command(bin, args...)
		logFile, err := os.Create(logPath)
		if err != nil {
			return nil, nil, err
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		p, err := Start("mailpit", cmd)
		logFile.Close() // the child has its own descriptor
		if err != nil {
			return nil, nil, fmt.Errorf("start mailpit: %w", err)
		}
		mp := mailpittest.Connect(smtpAddr, "http://"+httpAddr)
		if last = mp.WaitReady(p.Done(), database); last == nil {
			return p, mp, nil
		}
		p.Stop(syscall.SIGKILL, 0)
	}
	return nil, nil, fmt.Errorf("mailpit did not start (see %s): %w", logPath, last)
}
