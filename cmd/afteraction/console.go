package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/afteraction/afteraction/services/review"
)

// Console accounts of the single-process stack (dev, demo): a facilitator and
// an approver, both with the stack's console password.
const (
	consoleFacilitator = "facilitator"
	consoleApprover    = "approver"
)

// writeConsoleAccounts writes the stack's console account file into dir.
func writeConsoleAccounts(dir, password string) (string, error) {
	text := fmt.Sprintf("# afteraction dev/demo console accounts (argon2id); password in AFTERACTION_CONSOLE_PASSWORD\n"+
		"%s:facilitator:facilitator@example.com:%s:Dev Facilitator\n"+
		"%s:approver:approver@example.com:%s:Dev Approver\n",
		consoleFacilitator, review.HashPassword(password), consoleApprover, review.HashPassword(password))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "console-accounts")
	return path, os.WriteFile(path, []byte(text), 0o600)
}

// browser is what a person's browser does with the console and the
// participant form, without JavaScript: cookies, redirects, form posts with
// the page's CSRF token.
type browser struct {
	c    *http.Client
	page string
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// open GETs u and keeps the page.
func (b *browser) open(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return b.do(req, http.StatusOK)
}

// submit posts form to u with the CSRF token of the current page and
// expects the page it lands on (after redirects) to answer 200.
func (b *browser) submit(ctx context.Context, u string, form url.Values) error {
	if m := csrfField.FindStringSubmatch(b.page); m != nil {
		form.Set("csrf", m[1])
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req, http.StatusOK)
}

func (b *browser) do(req *http.Request, want int) error {
	resp, err := b.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	b.page = string(body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	return nil
}

// signIn signs in to the console at base.
func (b *browser) signIn(ctx context.Context, base, login, password string) error {
	if err := b.open(ctx, base+"/console/login"); err != nil {
		return err
	}
	if err := b.submit(ctx, base+"/console/login", url.Values{"login": {login}, "password": {password}, "next": {"/console"}}); err != nil {
		return fmt.Errorf("sign in as %s: %w", login, err)
	}
	return nil
}

// formAnswers renders API-style answers as the participant form's fields.
func formAnswers(answers []map[string]any) url.Values {
	form := url.Values{"action": {"submit"}}
	for _, a := range answers {
		id := a["question_id"].(string)
		switch v := a["text"]; {
		case v != nil:
			form.Set(id, v.(string))
		case a["rating"] != nil:
			form.Set(id, strconv.Itoa(a["rating"].(int)))
		case a["yes"] != nil:
			form.Set(id, map[bool]string{true: "yes", false: "no"}[a["yes"].(bool)])
		case a["choice"] != nil:
			form.Set(id, a["choice"].(string))
		case a["items"] != nil:
			form.Set(id, strings.Join(a["items"].([]string), "\n"))
		}
	}
	return form
}

// signOffForm renders a completion as the console's sign-off form.
func signOffForm(c completionBody) url.Values {
	form := url.Values{"summary": {c.Summary}}
	var findings []string
	for _, f := range c.Findings {
		findings = append(findings, f.Summary)
	}
	form.Set("findings", strings.Join(findings, "\n"))
	for i, a := range c.ActionItems {
		at := func(k, v string) { form.Set(fmt.Sprintf("item%d_%s", i, k), v) }
		at("title", a.Title)
		at("description", a.Description)
		at("category", string(a.Category))
		at("priority", string(a.Priority))
		at("due", a.DueDate)
		if a.Owner != nil {
			at("owner", a.Owner.Name)
			at("owner_email", a.Owner.Email)
		}
	}
	return form
}
