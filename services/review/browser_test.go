package review

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/afteraction/afteraction/pkg/events"
)

// chromium returns the browser the tests drive: $CHROMIUM, or Debian's
// chromium (installed by .ci/run).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("no chromium: install Debian's chromium (apt-get install chromium, as .ci/run does) or set CHROMIUM")
	return ""
}

// browser starts a headless chromium for the test; the returned function
// takes a screenshot named name into $REVIEW_SCREENSHOTS (or the temp
// directory), and one is taken automatically when the test fails.
func browser(t *testing.T) (context.Context, func(name string)) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("headless", "new"), chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// Generous: a loaded 2-core machine starts chromium slowly.
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	dir := os.Getenv("REVIEW_SCREENSHOTS")
	if dir == "" {
		dir = os.TempDir()
	}
	shot := func(name string) {
		var png []byte
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Run(sctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-%s.png", t.Name(), name))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		t.Logf("screenshot: %s", path)
	}
	t.Cleanup(func() {
		if t.Failed() {
			shot("failure")
		}
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, shot
}

// run runs browser actions, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func byID(id string) string { return fmt.Sprintf(`[id=%q]`, id) }

// signIn signs in through the sign-in page and waits for the review list.
func signIn(base, login, password string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(base + "/console"),
		chromedp.WaitVisible(`#login`, chromedp.ByQuery),
		chromedp.SendKeys(`#login`, login, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, password, chromedp.ByQuery),
		chromedp.Submit(`#password`, chromedp.ByQuery),
		chromedp.WaitVisible(`header.top .who`, chromedp.ByQuery),
	}
}

// TestBrowserReviewAsPeopleUseIt is issue 7's scenario in a real browser: a
// facilitator signs in, adds a business owner and copies the invitation
// link; the business owner opens it, answers (a conditional question appears
// only after the answer that triggers it), saves a draft, comes back,
// submits; the facilitator sees the answer, completes and signs off; a second
// approver approves; the review is completed and review.completed (from which
// the report is rendered) is emitted.
func TestBrowserReviewAsPeopleUseIt(t *testing.T) {
	t.Parallel()
	f := setupWith(t, func(c *ServiceConfig) {
		c.ApprovalSeverities = []events.Severity{events.SeverityHigh}
		c.ActionDue, _ = ParseActionDue(DefaultActionDue)
	})
	rv := f.open(registered(t))
	base := f.serveConsole()
	ctx, shot := browser(t)
	shots := os.Getenv("REVIEW_SCREENSHOTS") != ""
	page := base + "/console/reviews/" + rv.ReviewID

	run(t, ctx, "facilitator signs in", signIn(base, "fac", facilitatorPassword))
	var list string
	run(t, ctx, "review list", chromedp.Text(`main`, &list, chromedp.ByQuery))
	if !strings.Contains(list, rv.Title) || !strings.Contains(list, "0 / 7") {
		t.Fatalf("review list lacks the review: %q", list)
	}
	if shots {
		shot("1-list")
	}

	var link string
	run(t, ctx, "add a business owner and copy the link",
		chromedp.Navigate(page),
		chromedp.WaitVisible(`#p-name`, chromedp.ByQuery),
		chromedp.SendKeys(`#p-name`, "Bea Owner", chromedp.ByQuery),
		chromedp.SendKeys(`#p-email`, "bea@example.com", chromedp.ByQuery),
		chromedp.SetValue(`#p-role`, "business_owner", chromedp.ByQuery),
		chromedp.Submit(`#p-name`, chromedp.ByQuery),
		chromedp.WaitVisible(`#notice`, chromedp.ByQuery),
		chromedp.Value(`#participants tbody tr:last-child input.link`, &link, chromedp.ByQuery),
	)
	if !strings.HasPrefix(link, "http://review.test/review/"+rv.ReviewID+"?token=") {
		t.Fatalf("copied link = %q", link)
	}
	// The fixture's public URL is http://review.test/; the test server is base.
	link = base + strings.TrimPrefix(link, "http://review.test")
	if shots {
		shot("2-participants")
	}

	cond := byID("q-team_performance.steps_not_followed")
	var visible bool
	run(t, ctx, "the business owner opens the link",
		chromedp.Navigate(link),
		chromedp.WaitVisible(`#incident`, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`getComputedStyle(document.querySelector(%q)).display !== "none"`, cond), &visible),
	)
	if visible {
		t.Fatal("the conditional question is visible before the answer that triggers it")
	}
	run(t, ctx, "answer, triggering the conditional question, and save a draft",
		chromedp.SendKeys(byID("what_happened.account"), "I put the payment on hold at 10:05.", chromedp.ByQuery),
		chromedp.SetValue(byID("team_performance.procedures_followed"), "partly", chromedp.ByQuery),
		chromedp.WaitVisible(cond, chromedp.ByQuery),
		chromedp.SendKeys(byID("team_performance.steps_not_followed"), "The call-back to the supplier was skipped.", chromedp.ByQuery),
		chromedp.Click(`#save-draft`, chromedp.ByQuery),
		chromedp.WaitVisible(`#notice`, chromedp.ByQuery),
	)
	if shots {
		shot("3-form-draft")
	}
	var kept string
	run(t, ctx, "come back and submit",
		chromedp.Navigate(link),
		chromedp.WaitVisible(cond, chromedp.ByQuery),
		chromedp.Value(byID("team_performance.steps_not_followed"), &kept, chromedp.ByQuery),
		chromedp.Click(`#submit`, chromedp.ByQuery),
		chromedp.WaitVisible(`//h1[starts-with(., "Thank you")]`, chromedp.BySearch),
	)
	if kept != "The call-back to the supplier was skipped." {
		t.Fatalf("the draft was not kept: %q", kept)
	}

	var answers string
	run(t, ctx, "the facilitator sees the answer and signs off",
		chromedp.Navigate(page),
		chromedp.WaitVisible(`#answers`, chromedp.ByQuery),
		chromedp.Text(`#answers`, &answers, chromedp.ByQuery),
		chromedp.SendKeys(`#summary`, "The payment hold worked; the call-back was skipped.", chromedp.ByQuery),
		chromedp.SendKeys(`#findings`, "Supplier call-back is not enforced", chromedp.ByQuery),
		chromedp.SendKeys(`#item0_title`, "Enforce supplier call-back before payment changes", chromedp.ByQuery),
		chromedp.SendKeys(`#item0_owner`, "Bea Owner", chromedp.ByQuery),
		chromedp.SetValue(`#item0_priority`, "high", chromedp.ByQuery),
	)
	if !strings.Contains(answers, "The call-back to the supplier was skipped.") {
		t.Fatalf("the answer is not on the review page: %q", answers)
	}
	if shots {
		shot("4-review")
	}
	run(t, ctx, "sign off",
		chromedp.Click(`#signoff-button`, chromedp.ByQuery),
		chromedp.WaitVisible(`//p[contains(., "Waiting for the second approval")]`, chromedp.BySearch),
	)
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 0 {
		t.Fatalf("review.completed before the second approval: %d", n)
	}

	run(t, ctx, "the approver approves",
		chromedp.Click(`header.top button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#login`, chromedp.ByQuery),
		signIn(base, "appr", approverPassword),
		chromedp.Navigate(page),
		chromedp.WaitVisible(`#approve-button`, chromedp.ByQuery),
		chromedp.Click(`#approve-button`, chromedp.ByQuery),
		chromedp.WaitVisible(`//p[contains(., "approved by")]`, chromedp.BySearch),
	)
	if shots {
		shot("5-completed")
	}
	var status string
	run(t, ctx, "status", chromedp.Text(`#status`, &status, chromedp.ByQuery))
	if status != "completed" {
		t.Errorf("status = %q, want completed", status)
	}
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 1 {
		t.Fatalf("review.completed events = %d, want 1 (the report renders from it)", n)
	}
}
