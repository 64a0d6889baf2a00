package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/dbtest"
)

// shBlocks returns the lines of the ```sh blocks of a Markdown text.
func shBlocks(md string) [][]string {
	var blocks [][]string
	for {
		_, rest, ok := strings.Cut(md, "```sh\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "```")
		blocks = append(blocks, strings.Split(strings.TrimRight(block, "\n"), "\n"))
		md = after
	}
}

// commandShape is a command line without what differs from one machine to
// another: its comment, the environment assignments before the command
// (HTTP_ADDR=…), and the values of quoted assignments (DATABASE_URL='…').
func commandShape(line string) string {
	line = strings.TrimSpace(line)
	if i := strings.Index(line, "  #"); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	line = regexp.MustCompile(`^([A-Z_]+=('[^']*'|\S*) )+`).ReplaceAllString(line, "")
	return regexp.MustCompile(`([A-Z_]+)='(?:[^']|'\\'')*'`).ReplaceAllString(line, "$1='…'")
}

// newcomerEnv is the environment of a newcomer's terminal: this process's,
// without aptflow's variables (a test run sets some) or make's.
func newcomerEnv(set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DATABASE_URL", "TEST_DATABASE_URL", "HTTP_ADDR", "PUBLIC_URL", "METRICS_ADDR", "SMTP_URL", "MAIL_DIR",
			"OPS_BASIC_AUTH", "APTFLOW_TOKEN", "DATABASE_POOLER", "MAKEFLAGS", "MFLAGS", "MAKELEVEL":
			continue
		}
		env = append(env, kv)
	}
	return append(env, set...)
}

// TestReadme follows the README's « Getting started » as a newcomer would,
// on a fresh database: `make run` in one terminal; in another, which has
// none of make run's environment, the lines make run prints, which must be
// the README's; then every link the demo prints opens in a browser (no
// 401), and every curl command it prints works as printed. make run gets a
// fresh DATABASE_URL, a free HTTP_ADDR and its own MAIL_DIR, as the README
// says it may: the demo must find that address from the printed lines.
func TestReadme(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, started, ok := strings.Cut(string(readme), "## Getting started")
	started, _, _ = strings.Cut(started, "\n## ")
	blocks := shBlocks(started)
	if !ok || len(blocks) != 2 {
		t.Fatalf("README.md: « Getting started » should hold two sh blocks (make run, then what it prints); found %d", len(blocks))
	}
	var first []string
	for _, l := range blocks[0] {
		first = append(first, commandShape(l))
	}
	if strings.Join(first, "|") != "make run|make test" {
		t.Fatalf("README.md: the first commands are %q, want make run and make test", first)
	}

	mailDir := t.TempDir()
	addr := freeAddr(t)
	run := exec.Command("make", "run")
	run.Dir = root
	run.Env = newcomerEnv("DATABASE_URL="+dbtest.EmptyURL(t), "HTTP_ADDR="+addr, "MAIL_DIR="+mailDir)
	out, logs := &apptest.SyncBuffer{}, &apptest.SyncBuffer{}
	run.Stdout, run.Stderr = out, logs
	// make and the aptflow it execs in a group of their own, to stop both.
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := run.Start(); err != nil {
		t.Fatalf("make run: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = run.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-run.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(40 * time.Second):
			_ = syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("make run:\n%s\n%s", out, logs)
		}
	})
	watch(t, procEnv{"HTTP_ADDR": addr})
	waitReady(t, "http://"+addr, exited)

	// What make run printed for the other terminal: the indented lines
	// after its « In another terminal » line.
	_, hint, ok := strings.Cut(out.String(), "In another terminal")
	if !ok {
		t.Fatalf("make run printed no lines to copy:\n%s", out)
	}
	var printed, shapes, want []string
	for _, l := range strings.Split(hint, "\n")[1:] {
		if !strings.HasPrefix(l, "  ") {
			break
		}
		printed = append(printed, strings.TrimSpace(l))
		shapes = append(shapes, commandShape(l))
	}
	for _, l := range blocks[1] {
		want = append(want, commandShape(l))
	}
	if strings.Join(shapes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("make run prints\n\t%s\nbut the README shows\n\t%s", strings.Join(printed, "\n\t"), strings.Join(blocks[1], "\n\t"))
	}
	if !strings.Contains(printed[len(printed)-1], addr) {
		t.Errorf("the demo line does not point at make run's HTTP_ADDR %s: %q", addr, printed[len(printed)-1])
	}

	// The other terminal.
	terminal := func(t *testing.T, dir, script string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+script)
		cmd.Dir = dir
		cmd.Env = newcomerEnv()
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s\n: %v\n%s", script, err, b)
		}
		return string(b)
	}
	demo := terminal(t, root, strings.Join(printed, "\n"))
	t.Log(demo)
	if !strings.Contains(demo, "→ accepte") || !strings.Contains(demo, "Where to look:") {
		t.Fatalf("the demo did not run through:\n%s", demo)
	}

	links, curls := 0, 0
	for _, line := range strings.Split(demo, "\n") {
		_, cmd, ok := strings.Cut(line, "curl ")
		if ok {
			// Run as printed, in a directory of its own (-o attestation.pdf).
			terminal(t, t.TempDir(), "curl "+cmd)
			curls++
			continue
		}
		for _, link := range regexp.MustCompile(`https?://\S+`).FindAllString(line, -1) {
			req, err := http.NewRequest("GET", link, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8") // a browser's
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", link, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("a browser opening %s gets %d", link, resp.StatusCode)
			}
			links++
		}
	}
	// River UI, the verification page, the API; the dossier, the PDF, the tabs.
	if links < 3 || curls < 3 {
		t.Errorf("checked %d links and %d curl commands of the demo, want 3 of each", links, curls)
	}
	if emls, _ := filepath.Glob(filepath.Join(mailDir, "*.eml")); len(emls) == 0 {
		t.Errorf("no e-mail written under MAIL_DIR %s", mailDir)
	}
}
