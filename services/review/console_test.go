package review

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
)

// Passwords of the console test accounts.
const (
	facilitatorPassword = "correct horse battery staple"
	approverPassword    = "another long passphrase"
)

// testAccounts returns a facilitator (fac), an approver (appr) and a reader
// (comp), hashed with cheap argon2id parameters to keep tests fast.
func testAccounts(t *testing.T) Accounts {
	t.Helper()
	cheap := argon2Params{memory: 1024, time: 1, threads: 1}
	text := "# test accounts\n" +
		"fac:facilitator:fac@example.com:" + hashPasswordWith(facilitatorPassword, cheap) + ":Fiona Facilitator\n" +
		"appr:approver:appr@example.com:" + hashPasswordWith(approverPassword, cheap) + ":Anton Approver\n" +
		"comp:compliance::" + hashPasswordWith("compliance password", cheap) + ":Carla Compliance\n"
	accts, err := ParseAccounts(text)
	if err != nil {
		t.Fatal(err)
	}
	return accts
}

// serveConsole serves the fixture's service with the test accounts.
func (f *fixture) serveConsole() string {
	f.t.Helper()
	tokens := httpapi.Tokens{facilitatorToken: roleFacilitator}
	h := Routes(f.svc, tokens, ConsoleConfig{Accounts: testAccounts(f.t)}, prometheus.NewRegistry(), nil,
		zaptest.NewLogger(f.t, zaptest.Level(zap.ErrorLevel)))
	srv := httptest.NewServer(h)
	f.t.Cleanup(srv.Close)
	return srv.URL
}

// client is a browser without JavaScript: cookies, redirects, forms.
type client struct {
	t    *testing.T
	base string
	c    *http.Client
	last string // body of the last page
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, c: &http.Client{Jar: jar}}
}

func (c *client) do(req *http.Request) int {
	c.t.Helper()
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.last = string(b)
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			c.t.Errorf("%s %s: CSP %q lacks frame-ancestors 'none'", req.Method, req.URL.Path, csp)
		}
	}
	return resp.StatusCode
}

func (c *client) get(path string) int {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

// post submits form to path, adding the CSRF token of the last page unless
// form sets "csrf" itself.
func (c *client) post(path string, form url.Values) int {
	c.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf())
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) csrf() string {
	m := csrfRE.FindStringSubmatch(c.last)
	if m == nil {
		return ""
	}
	return m[1]
}

func (c *client) login(login, password string) int {
	c.t.Helper()
	if code := c.get("/console/login"); code != http.StatusOK {
		c.t.Fatalf("GET /console/login: %d", code)
	}
	return c.post("/console/login", url.Values{"login": {login}, "password": {password}, "next": {"/console"}})
}

func (c *client) contains(what string, want ...string) {
	c.t.Helper()
	for _, w := range want {
		if !strings.Contains(c.last, w) {
			c.t.Errorf("%s: page lacks %q", what, w)
		}
	}
}

var linkRE = regexp.MustCompile(`value="(http://[^"]+/review/[0-9a-f-]+\?token=[A-Za-z0-9_-]+)"`)

// TestConsoleWithoutJavaScript drives the console and the participant form
// with a plain HTTP client: sign-in, bad input refused naming each field and
// escaped, a participant added, their draft and submission, revocation,
// sign-off awaiting a second approval, approval by another person, and the
// review.completed event with due dates filled in.
func TestConsoleWithoutJavaScript(t *testing.T) {
	t.Parallel()
	f := setupWith(t, func(c *ServiceConfig) {
		c.ApprovalSeverities = []events.Severity{events.SeverityHigh}
		c.ActionDue, _ = ParseActionDue(DefaultActionDue)
	})
	rv := f.open(registered(t))
	base := f.serveConsole()
	fac := newClient(t, base)

	if code := fac.get("/console"); code != http.StatusOK || !strings.Contains(fac.last, `name="password"`) {
		t.Fatalf("GET /console signed out: %d, want the sign-in page", code)
	}
	if code := fac.login("fac", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("sign-in with a wrong password: %d, want 401", code)
	}
	if code := fac.login("fac", facilitatorPassword); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	fac.contains("review list", rv.Title, "Fiona Facilitator", "0 / 7")

	page := "/console/reviews/" + rv.ReviewID
	if code := fac.get(page); code != http.StatusOK {
		t.Fatalf("GET review page: %d", code)
	}
	fac.contains("review page", "Phishing e-mail delivered to 37 mailboxes", "Kemal Yıldız", "Invite someone")

	// Bad input: every field named, nothing stored, HTML escaped.
	code := fac.post(page+"/participants", url.Values{"name": {"<script>alert(1)</script>\r\nX"},
		"email": {"not-an-address"}, "role": {"ceo"}})
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("add with bad input: %d, want 422", code)
	}
	fac.contains("422 page", "p-name-error", "p-email-error", "p-role-error", "&lt;script&gt;alert(1)&lt;/script&gt;")
	if strings.Contains(fac.last, "<script>alert") {
		t.Error("the name is not escaped on the console page")
	}
	if n := len(f.only(rv.IncidentID).Participants); n != 7 {
		t.Fatalf("participants after refused input = %d, want 7", n)
	}
	if code := fac.post(page+"/participants", url.Values{"name": {"Bea <b>Owner</b>"}, "email": {"bea@example.com"},
		"role": {"business_owner"}, "csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("POST without the session's CSRF token: %d, want 403", code)
	}
	fac.get(page)
	if code := fac.post(page+"/participants", url.Values{"name": {"Bea <b>Owner</b>"}, "email": {"bea@example.com"},
		"role": {"business_owner"}}); code != http.StatusOK {
		t.Fatalf("add participant: %d", code)
	}
	fac.contains("after adding", "Participant added", "Bea &lt;b&gt;Owner&lt;/b&gt;", "person:fac", "<td>Business owner</td>")
	var link string
	for _, m := range linkRE.FindAllStringSubmatch(fac.last, -1) {
		link = m[1] // the newest participant is listed last
	}
	if link == "" {
		t.Fatal("no invitation link on the review page")
	}
	u, _ := url.Parse(link)

	// The business owner opens the link, saves a draft, comes back, submits.
	bea := newClient(t, base)
	if code := bea.get(u.RequestURI()); code != http.StatusOK {
		t.Fatalf("open the invitation: %d", code)
	}
	bea.contains("form", "The incident as recorded", "Phishing e-mail delivered to 37 mailboxes", "Which steps were not followed")
	answers := url.Values{"what_happened.account": {"I approved the <b>payment</b> hold."},
		"team_performance.procedures_followed": {"partly"}, "team_performance.steps_not_followed": {"Call-back skipped."},
		"what_happened.timeline_corrections": {"hidden: timeline_accurate not answered no"}}
	draft := url.Values{"action": {"draft"}}
	for k, v := range answers {
		draft[k] = v
	}
	if code := bea.post(u.RequestURI(), draft); code != http.StatusOK || !strings.Contains(bea.last, "Draft saved") {
		t.Fatalf("save draft: %d", code)
	}
	bea.contains("draft saved", "Not kept as an answer") // the hidden question's text, said so
	if code := bea.get(u.RequestURI()); code != http.StatusOK {
		t.Fatalf("come back: %d", code)
	}
	bea.contains("form with draft", "Your draft of", "Call-back skipped.", "I approved the &lt;b&gt;payment&lt;/b&gt; hold.")
	if strings.Contains(bea.last, "hidden: timeline_accurate") {
		t.Error("an answer to a hidden conditional question was kept")
	}
	submit := url.Values{"action": {"submit"}}
	for k, v := range answers {
		submit[k] = v
	}
	submit.Set("preventive_measures.actions", "Call back before releasing payments")
	if code := bea.post(u.RequestURI(), submit); code != http.StatusOK || !strings.Contains(bea.last, "Thank you") {
		t.Fatalf("submit: %d", code)
	}
	bea.contains("submitted", "Not kept as an answer")

	// The facilitator sees the answer and the audit.
	fac.get(page)
	fac.contains("answers", "Call-back skipped.", "form", "team_performance.steps_not_followed")

	// Revoking one invitation leaves the others working; a token for another review is refused.
	other := f.only(rv.IncidentID).Participants[1]
	if code := fac.post(page+"/participants/"+other.ParticipantID+"/revoke", url.Values{}); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	anon := newClient(t, base)
	if code := anon.get("/review/" + rv.ReviewID + "?token=" + other.InvitationToken); code != http.StatusForbidden {
		t.Errorf("revoked link: %d, want 403", code)
	}
	if code := anon.get(u.RequestURI()); code != http.StatusOK {
		t.Errorf("another participant's link after a revocation: %d, want 200", code)
	}
	rv2 := f.open(registered(t))
	if code := anon.get("/review/" + rv2.ReviewID + "?token=" + u.Query().Get("token")); code != http.StatusForbidden {
		t.Errorf("token for another review: %d, want 403", code)
	}

	// Sign-off waits for a second approval (high needs one here); the
	// facilitator cannot approve, the approver can.
	fac.get(page)
	code = fac.post(page+"/signoff", url.Values{"summary": {"Payment hold worked."}, "findings": {"Call-back was skipped"},
		"item0_title": {"Call back before releasing payments"}, "item0_category": {"process"}, "item0_priority": {"high"},
		"item1_title": {"Train finance"}, "item1_category": {"training"}, "item1_owner_email": {"nope"}})
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("sign-off with a bad owner e-mail: %d, want 422", code)
	}
	fac.contains("sign-off errors", "action_items[1].owner")
	fac.get(page)
	code = fac.post(page+"/signoff", url.Values{"summary": {"Payment hold worked."}, "findings": {"Call-back was skipped"},
		"item0_title": {"Call back before releasing payments"}, "item0_category": {"process"}, "item0_priority": {"high"}})
	if code != http.StatusOK {
		t.Fatalf("sign-off: %d", code)
	}
	fac.contains("awaiting approval", "Waiting for the second approval", "person:fac")
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 0 {
		t.Fatalf("review.completed before approval: %d events", n)
	}
	if code := fac.post(page+"/approval", url.Values{"decision": {"approve"}}); code != http.StatusForbidden {
		t.Errorf("facilitator approving: %d, want 403", code)
	}
	appr := newClient(t, base)
	if code := appr.login("appr", approverPassword); code != http.StatusOK {
		t.Fatalf("approver sign-in: %d", code)
	}
	appr.contains("approver's list", "Awaiting approval")
	appr.get(page)
	if code := appr.post(page+"/approval", url.Values{"decision": {"approve"}}); code != http.StatusOK {
		t.Fatalf("approve: %d", code)
	}
	appr.contains("completed", "approved by <strong>person:appr</strong>", "Call back before releasing payments")
	emitted := f.outbox(events.TypeReviewCompleted)
	if len(emitted) != 1 {
		t.Fatalf("review.completed events = %d, want 1", len(emitted))
	}
	var ev events.ReviewCompleted
	if err := json.Unmarshal(emitted[0], &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.ActionItems) != 1 || ev.ActionItems[0].DueDate == "" || ev.Facilitator.Name != "Fiona Facilitator" {
		t.Errorf("completed: action items %+v, facilitator %+v", ev.ActionItems, ev.Facilitator)
	}

	// The facilitator amends the completed review with a reason; without one it is refused.
	fac.get(page)
	if code := fac.post(page+"/amendments", url.Values{"summary": {"Corrected."}, "findings": {"Call-back was skipped"}}); code != http.StatusUnprocessableEntity {
		t.Errorf("amendment without a reason: %d, want 422", code)
	}
	fac.contains("amendment 422", "reason: required")
	fac.get(page)
	if code := fac.post(page+"/amendments", url.Values{"reason": {"Summary <wrong>"}, "summary": {"Corrected."},
		"findings": {"Call-back was skipped"}}); code != http.StatusOK {
		t.Fatalf("amend: %d", code)
	}
	fac.contains("amended", "Amendment recorded", "person:fac", "Summary &lt;wrong&gt;")
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 2 {
		t.Errorf("review.completed events after the amendment = %d, want 2", n)
	}

	// Compliance reads but may not change anything.
	comp := newClient(t, base)
	if code := comp.login("comp", "compliance password"); code != http.StatusOK {
		t.Fatalf("compliance sign-in: %d", code)
	}
	comp.get(page)
	if strings.Contains(comp.last, "?token=") {
		t.Error("compliance sees invitation links")
	}
	if code := comp.post(page+"/amendments", url.Values{"reason": {"x"}}); code != http.StatusForbidden {
		t.Errorf("compliance amending: %d, want 403", code)
	}

	// Signing out ends the session.
	fac.get(page)
	if code := fac.post("/console/logout", url.Values{}); code != http.StatusOK {
		t.Fatalf("sign out: %d", code)
	}
	if fac.get(page); !strings.Contains(fac.last, `name="password"`) {
		t.Error("after signing out the review page is still shown")
	}
}

// TestConsoleSignInThrottled: after five failures for a login, even the
// right password is refused for the window.
func TestConsoleSignInThrottled(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := newClient(t, f.serveConsole())
	for range 5 {
		if code := c.login("fac", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d, want 401", code)
		}
	}
	if code := c.login("fac", facilitatorPassword); code != http.StatusTooManyRequests {
		t.Fatalf("right password after 5 failures: %d, want 429", code)
	}
	if code := newClient(t, c.base).login("appr", approverPassword); code != http.StatusOK {
		t.Errorf("another login from the same address: %d, want 200", code)
	}
}

// TestLoginFormNeedsItsCSRFToken: a sign-in posted from elsewhere (no
// matching login cookie and token) is refused.
func TestLoginFormNeedsItsCSRFToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := newClient(t, f.serveConsole())
	if code := c.post("/console/login", url.Values{"login": {"fac"}, "password": {facilitatorPassword}, "csrf": {"x"}}); code != http.StatusForbidden {
		t.Errorf("sign-in without the form's token: %d, want 403", code)
	}
}

// TestConsoleListGroupsAndFilters: reviews are listed under overdue, open
// and historical, and the severity and category filters narrow the list.
func TestConsoleListGroupsAndFilters(t *testing.T) {
	t.Parallel()
	f := setupWith(t, func(c *ServiceConfig) { c.MaxAge = 30 * 24 * time.Hour })
	overdue := registered(t) // high, phishing: due 5 days after closure
	overdue.Incident.Timestamps.ClosedAt = f.clock.Now().Add(-10 * 24 * time.Hour)
	f.open(overdue)
	open := registered(t)
	open.Incident.Title = "Laptop lost on a train"
	open.Incident.Severity, open.Incident.Category = events.SeverityMedium, "lost_device"
	open.Incident.Timestamps.ClosedAt = f.clock.Now().Add(-time.Hour)
	f.open(open)
	old := registered(t)
	old.Incident.Title = "Old outage from the archive"
	old.Incident.Timestamps.ClosedAt = f.clock.Now().Add(-90 * 24 * time.Hour)
	f.handle(old)

	c := newClient(t, f.serveConsole())
	if code := c.login("fac", facilitatorPassword); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	section := func(id string) string {
		i := strings.Index(c.last, `id="`+id+`"`)
		if i < 0 {
			return ""
		}
		rest := c.last[i:]
		if j := strings.Index(rest, "</section>"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	if s := section("overdue"); !strings.Contains(s, overdue.Incident.Title) {
		t.Errorf("overdue section lacks %q", overdue.Incident.Title)
	}
	if s := section("open"); !strings.Contains(s, "Laptop lost on a train") {
		t.Errorf("open section lacks the laptop")
	}
	if s := section("historical"); !strings.Contains(s, "Old outage from the archive") {
		t.Errorf("historical section lacks the archive outage")
	}
	c.get("/console?severity=medium")
	if !strings.Contains(c.last, "Laptop lost on a train") || strings.Contains(c.last, overdue.Incident.Title) {
		t.Error("severity filter does not narrow to the medium review")
	}
	c.get("/console?category=phishing")
	if strings.Contains(c.last, "Laptop lost on a train") || !strings.Contains(c.last, overdue.Incident.Title) {
		t.Error("category filter does not narrow to the phishing reviews")
	}
}
