package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/aptflow/aptflow/internal/apptest"
)

// TestVerificationPageInBrowser loads the verification page in a real
// headless Chromium at phone, 200 %-zoomed laptop (640 CSS px) and desktop
// widths: no horizontal scrolling, and axe-core finds no serious or
// critical accessibility violation. Screenshots go to var/screenshots
// (docs/ keeps one of each width as what the page looks like).
func TestVerificationPageInBrowser(t *testing.T) {
	t.Parallel()
	chromium := apptest.Tool(t, "chromium", "chromium")
	axePath := os.Getenv("AXE_CORE_JS")
	if axePath == "" {
		t.Fatal("AXE_CORE_JS is not set: run the tests with `make test`, or export AXE_CORE_JS=$(scripts/ensure-axe.sh)")
	}
	axeJS, err := os.ReadFile(axePath)
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	s, clock := signedStack(t)
	_, _, code := acceptedWithAttestation(t, s)
	valid := time.Date(2027, time.January, 15, 12, 0, 0, 0, time.UTC)
	clock.Store(&valid)
	shots := filepath.Join("..", "var", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromium),
			chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
			chromedp.Flag("headless", "new"),
			chromedp.Flag("lang", "fr-FR"),
		)...)
	defer cancel()

	for _, width := range []int64{360, 640, 1280} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			ctx, cancel := chromedp.NewContext(alloc)
			defer cancel()
			ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
			defer cancelTimeout()
			step := func(what string, a chromedp.Action[chromedp.Void]) {
				t.Helper()
				if _, err := chromedp.Run(ctx, a); err != nil {
					t.Fatalf("chromium, %s: %v", what, err)
				}
			}
			step("viewport", chromedp.EmulateViewport(width, 800))
			step("load", chromedp.Navigate(s.Server.URL+"/attestations/"+code))
			step("wait", chromedp.WaitVisible(chromedp.CSS("main")))
			overflow, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth - window.innerWidth`))
			if err != nil {
				t.Fatalf("chromium: %v", err)
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](string(axeJS)+";0")); err != nil {
				t.Fatalf("load axe-core: %v", err)
			}
			violations, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(
				r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
					.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" "))}))))`,
				chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatalf("axe-core: %v", err)
			}
			if err := os.WriteFile(filepath.Join(shots, fmt.Sprintf("verification-%d.png", width)), png, 0o644); err != nil {
				t.Fatal(err)
			}
			if overflow > 0 {
				t.Errorf("the page is %d px wider than the %d px viewport: horizontal scrolling", overflow, width)
			}
			var found []map[string]any
			if err := json.Unmarshal([]byte(violations), &found); err != nil {
				t.Fatalf("axe result %q: %v", violations, err)
			}
			for _, v := range found {
				t.Errorf("axe-core: %v", v)
			}
		})
	}
}
