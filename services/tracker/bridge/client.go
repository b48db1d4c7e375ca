package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

const (
	// maxResponse bounds what is read of a remote answer.
	maxResponse = 1 << 20
	// maxMessage bounds the remote message kept in an error.
	maxMessage = 2000
	// secondaryLimitWait is how long to wait after a GitHub secondary rate
	// limit that names no time ("wait at least one minute", GitHub docs).
	secondaryLimitWait = time.Minute
)

// client sends JSON requests to one remote API.
type client struct {
	http    *http.Client
	base    string
	headers http.Header
	now     func() time.Time
}

func newClient(hc *http.Client, base string, headers http.Header) *client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &client{http: hc, base: strings.TrimRight(base, "/"), headers: headers, now: time.Now}
}

// do sends body (JSON-encoded unless nil) to path and decodes a 2xx answer
// into out (when not nil). Every failure is a *RemoteError.
func (c *client) do(ctx context.Context, op, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for k, vs := range c.headers {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &RemoteError{Op: op, Message: err.Error()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return &RemoteError{Op: op, Status: resp.StatusCode, Message: "read answer: " + err.Error()}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return remoteError(op, resp, raw, c.now())
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return &RemoteError{Op: op, Status: resp.StatusCode, Message: "undecodable answer: " + err.Error()}
		}
	}
	return nil
}

// remoteError classifies an unsuccessful answer: Retry-After (seconds or an
// HTTP date), X-RateLimit-Remaining: 0 with X-RateLimit-Reset (epoch
// seconds, GitHub and GitLab), and GitHub's secondary rate limits (403 or
// 429 whose message says so) make it a rate limit with the wait they name.
func remoteError(op string, resp *http.Response, raw []byte, now time.Time) *RemoteError {
	e := &RemoteError{Op: op, Status: resp.StatusCode, Message: remoteMessage(raw)}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if d, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok {
		e.RetryAfter = d
		e.Limited = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden ||
			resp.StatusCode == http.StatusServiceUnavailable
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" &&
		(resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) {
		e.Limited = true
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			if d := time.Unix(reset, 0).Sub(now); d > e.RetryAfter {
				e.RetryAfter = d
			}
		}
	}
	if strings.Contains(strings.ToLower(e.Message), "secondary rate limit") {
		e.Limited = true
		if e.RetryAfter == 0 {
			e.RetryAfter = secondaryLimitWait
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.Limited = true
	}
	return e
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// remoteMessage extracts the human-readable message from the error bodies
// of GitHub ({"message", "errors": [...]}), Jira ({"errorMessages": [...],
// "errors": {field: message}}) and GitLab ({"message": ... | {field: [...]}}
// or {"error": ...}); anything else is kept as text, truncated.
func remoteMessage(raw []byte) string {
	var body struct {
		Message       json.RawMessage `json:"message"`
		Error         string          `json:"error"`
		ErrorDesc     string          `json:"error_description"`
		ErrorMessages []string        `json:"errorMessages"`
		Errors        json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return truncate(strings.TrimSpace(string(raw)), maxMessage)
	}
	var parts []string
	var s string
	if json.Unmarshal(body.Message, &s) == nil && s != "" {
		parts = append(parts, s)
	} else if len(body.Message) > 0 && string(body.Message) != "null" {
		parts = append(parts, fieldMessages(body.Message)...)
	}
	if body.Error != "" {
		parts = append(parts, body.Error)
	}
	if body.ErrorDesc != "" {
		parts = append(parts, body.ErrorDesc)
	}
	parts = append(parts, body.ErrorMessages...)
	if len(body.Errors) > 0 && string(body.Errors) != "null" {
		parts = append(parts, fieldMessages(body.Errors)...)
	}
	if len(parts) == 0 {
		return truncate(strings.TrimSpace(string(raw)), maxMessage)
	}
	return truncate(strings.Join(parts, "; "), maxMessage)
}

// fieldMessages renders {"field": "message"}, {"field": ["message"]} and
// GitHub's [{"resource", "field", "code", "message"}] as "field: message".
func fieldMessages(raw json.RawMessage) []string {
	var out []string
	var byField map[string]json.RawMessage
	if json.Unmarshal(raw, &byField) == nil {
		keys := make([]string, 0, len(byField))
		for k := range byField {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			var one string
			var many []string
			switch {
			case json.Unmarshal(byField[k], &one) == nil:
				out = append(out, k+": "+one)
			case json.Unmarshal(byField[k], &many) == nil:
				out = append(out, k+": "+strings.Join(many, ", "))
			default:
				out = append(out, k+": "+string(byField[k]))
			}
		}
		return out
	}
	var list []struct {
		Resource string `json:"resource"`
		Field    string `json:"field"`
		Code     string `json:"code"`
		Message  string `json:"message"`
	}
	if json.Unmarshal(raw, &list) == nil {
		for _, e := range list {
			msg := e.Message
			if msg == "" {
				msg = e.Code
			}
			if e.Field != "" {
				msg = e.Field + ": " + msg
			}
			if e.Resource != "" {
				msg = e.Resource + " " + msg
			}
			out = append(out, msg)
		}
		return out
	}
	var strs []string
	if json.Unmarshal(raw, &strs) == nil {
		return strs
	}
	return []string{string(raw)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// findLabelled lists the issues under path (GitHub and GitLab take the same
// query) in every state that carry the marker label of actionID, and returns
// the first, or nil.
func findLabelled[T any](ctx context.Context, c *client, path, actionID string) (*T, error) {
	q := url.Values{"labels": {Marker(actionID)}, "state": {"all"}, "per_page": {"1"}}
	var found []T
	if err := c.do(ctx, "find issue", http.MethodGet, path+"?"+q.Encode(), nil, &found); err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, nil
	}
	return &found[0], nil
}

// closeIfFinished updates a just-created issue when the action is finished
// already: GitHub and GitLab create issues open.
func closeIfFinished(ctx context.Context, b Bridge, ref Ref, is Issue) (Ref, error) {
	if is.Status == events.StatusDone || is.Status == events.StatusWontDo {
		return ref, b.Update(ctx, ref, is)
	}
	return ref, nil
}
