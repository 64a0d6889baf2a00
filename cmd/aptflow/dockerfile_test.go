package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfileDependencyLayer builds what the Dockerfile's dependency
// layer sees, without Docker (none runs in CI): the files it copies before
// `go mod download`, alone in a directory, must be enough for the module
// graph. A replace directive to a directory it does not copy (as
// third_party/gofpdf once was) breaks the image build there.
func TestDockerfileDependencyLayer(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	var copied []string
	found := false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "RUN" && strings.Contains(sc.Text(), "go mod download") {
			found = true
			break
		}
		if fields[0] != "COPY" || strings.HasPrefix(fields[1], "--") {
			continue
		}
		srcs, dst := fields[1:len(fields)-1], fields[len(fields)-1]
		for _, src := range srcs {
			b, err := os.ReadFile(filepath.Join(root, src))
			if err != nil {
				t.Fatalf("COPY %s: %v", src, err)
			}
			to := filepath.Join(dir, dst)
			if strings.HasSuffix(dst, "/") {
				to = filepath.Join(dir, dst, filepath.Base(src))
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o644); err != nil {
				t.Fatal(err)
			}
			copied = append(copied, src)
		}
	}
	if !found {
		t.Fatal("the Dockerfile has no `go mod download` step")
	}
	cmd := exec.Command("go", "mod", "download")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod download with only %v, as the Dockerfile copies them before it: %v\n%s", copied, err, out)
	}
}
