package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/afteraction/afteraction/pkg/bus"
)

// ChannelMail is the e-mail channel; a chat webhook channel is "webhook:<name>".
const (
	ChannelMail          = "mail"
	channelWebhookPrefix = "webhook:"
)

// Webhook kinds: the JSON each chat's incoming webhook takes.
const (
	WebhookSlack      = "slack"
	WebhookTeams      = "teams"
	WebhookMattermost = "mattermost"
)

// Webhook is a chat incoming webhook.
type Webhook struct {
	Name, Kind, URL string
}

// ParseWebhooks parses NOTIFY_WEBHOOKS: "name=kind:url" entries separated by
// ";" or newlines, kind one of slack, teams, mattermost, url absolute http(s).
func ParseWebhooks(s string) (map[string]Webhook, error) {
	out := map[string]Webhook{}
	for _, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, rest, ok := strings.Cut(entry, "=")
		kind, target, ok2 := strings.Cut(rest, ":")
		name, kind = strings.TrimSpace(name), strings.TrimSpace(kind)
		if !ok || !ok2 || name == "" {
			return nil, fmt.Errorf("%q: want name=kind:url", redactURL(entry))
		}
		if !slices.Contains([]string{WebhookSlack, WebhookTeams, WebhookMattermost}, kind) {
			return nil, fmt.Errorf("webhook %s: kind %q, want slack, teams or mattermost", name, kind)
		}
		u, err := url.Parse(strings.TrimSpace(target))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("webhook %s: want an absolute http(s) URL", name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("webhook %s: defined twice", name)
		}
		out[name] = Webhook{Name: name, Kind: kind, URL: u.String()}
	}
	return out, nil
}

// redactURL keeps the scheme and host of URLs in s: webhook URLs are secrets.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return s[:i+3] + rest[:j] + "/…"
		}
	}
	return s
}

// Route sends notices of Reason ("*": any) to recipients in Domain ("": any) over Channels.
type Route struct {
	Reason, Domain string
	Channels       []string
}

// Routes chooses the channels of each notice: the first route matching its
// reason and its recipient's e-mail domain wins.
type Routes []Route

// ParseRoutes parses NOTIFY_ROUTES: rules separated by ";", each
// "<reason|*>[@<domain>]=<channel>[,<channel>...]", channels "mail" or
// "webhook:<name>" of a webhook in webhooks. A final "*=mail" is implied.
// Example: "action_overdue=mail,webhook:ops; *@partner.example=webhook:partner".
func ParseRoutes(s string, webhooks map[string]Webhook) (Routes, error) {
	var rs Routes
	for _, rule := range strings.Split(s, ";") {
		rule = strings.TrimSpace(rule)
		if rule == "" {
			continue
		}
		match, chans, ok := strings.Cut(rule, "=")
		if !ok {
			return nil, fmt.Errorf("rule %q: want <reason|*>[@domain]=<channels>", rule)
		}
		reason, domain, _ := strings.Cut(strings.TrimSpace(match), "@")
		r := Route{Reason: strings.TrimSpace(reason), Domain: strings.ToLower(strings.TrimSpace(domain))}
		if r.Reason != "*" && !slices.Contains(Reasons(), Reason(r.Reason)) {
			return nil, fmt.Errorf("rule %q: unknown reason %q (want * or one of %v)", rule, r.Reason, Reasons())
		}
		for _, c := range strings.Split(chans, ",") {
			c = strings.TrimSpace(c)
			name, isHook := strings.CutPrefix(c, channelWebhookPrefix)
			switch {
			case c == ChannelMail:
			case isHook && webhooks[name].Name != "":
			default:
				return nil, fmt.Errorf("rule %q: channel %q, want mail or webhook:<name of NOTIFY_WEBHOOKS>", rule, c)
			}
			if !slices.Contains(r.Channels, c) {
				r.Channels = append(r.Channels, c)
			}
		}
		rs = append(rs, r)
	}
	return append(rs, Route{Reason: "*", Channels: []string{ChannelMail}}), nil
}

// For returns the channels of a notice for reason to a recipient at email.
func (rs Routes) For(reason Reason, email string) []string {
	domain := ""
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		domain = strings.ToLower(email[i+1:])
	}
	for _, r := range rs {
		if (r.Reason == "*" || r.Reason == string(reason)) && (r.Domain == "" || r.Domain == domain) {
			return r.Channels
		}
	}
	return []string{ChannelMail}
}

// String renders the routes for the start-up log.
func (rs Routes) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		m := r.Reason
		if r.Domain != "" {
			m += "@" + r.Domain
		}
		parts[i] = m + "=" + strings.Join(r.Channels, ",")
	}
	return strings.Join(parts, "; ")
}

// ChatPayload is the JSON body of a chat message for the webhook's kind:
// Slack and Mattermost take {"text": ...} (Slack mrkdwn escapes &, <, >);
// Microsoft Teams (Workflows "post to a channel when a webhook request is
// received") takes a message with an Adaptive Card attachment.
func ChatPayload(kind, title, text string) ([]byte, error) {
	switch kind {
	case WebhookSlack:
		esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
		return json.Marshal(map[string]string{"text": "*" + esc.Replace(title) + "*\n" + esc.Replace(text)})
	case WebhookMattermost:
		return json.Marshal(map[string]string{"text": "#### " + title + "\n" + text})
	case WebhookTeams:
		block := func(text string, bold bool) map[string]any {
			b := map[string]any{"type": "TextBlock", "text": text, "wrap": true}
			if bold {
				b["weight"], b["size"] = "Bolder", "Medium"
			}
			return b
		}
		return json.Marshal(map[string]any{
			"type": "message",
			"attachments": []any{map[string]any{
				"contentType": "application/vnd.microsoft.card.adaptive",
				"content": map[string]any{
					"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
					"type":    "AdaptiveCard", "version": "1.4",
					"body": []any{block(title, true), block(text, false)},
				},
			}},
		})
	}
	return nil, fmt.Errorf("webhook kind %q", kind)
}

// PostChat posts a chat message to hook. A 4xx answer (other than 408 and
// 429) is permanent: the webhook was removed or refuses the message; 5xx, 408,
// 429 and network errors are temporary.
func PostChat(ctx context.Context, client *http.Client, hook Webhook, title, text string) error {
	body, err := ChatPayload(hook.Kind, title, text)
	if err != nil {
		return bus.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return bus.Permanent(fmt.Errorf("webhook %s: %w", hook.Name, err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is a secret: keep it out of errors
		}
		return fmt.Errorf("webhook %s: %w", hook.Name, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return bus.Permanent(fmt.Errorf("webhook %s: %s: %s", hook.Name, resp.Status, strings.TrimSpace(string(snippet))))
	default:
		return fmt.Errorf("webhook %s: %s", hook.Name, resp.Status)
	}
}
