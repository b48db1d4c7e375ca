package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
)

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func withSecret(source, secret string) Config {
	cfg := DefaultConfig()
	sc := cfg.Sources[source]
	sc.Secret = secret
	cfg.Sources[source] = sc
	return cfg
}

func TestSignatures(t *testing.T) {
	const secret = "s3cr3t-webhook-key"
	pd := fixture(t, "pagerduty/incident_resolved.json")
	gh := fixture(t, "github/issues_closed.json")
	jira := fixture(t, "jira/issue_resolved_cloud.json")
	sn := fixture(t, "servicenow/incident_resolved_table_api.json")
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name   string
		source string
		h      http.Header
		body   []byte
		ok     bool
		field  string
	}{
		{"pagerduty good", SourcePagerDuty, hdr("X-PagerDuty-Signature", "v1="+sign(secret, pd)), pd, true, ""},
		{"pagerduty several, one good (rotation)", SourcePagerDuty,
			hdr("X-PagerDuty-Signature", "v1="+sign("old-secret", pd)+", v1="+sign(secret, pd)), pd, true, ""},
		{"pagerduty bad", SourcePagerDuty, hdr("X-PagerDuty-Signature", "v1="+sign("wrong", pd)), pd, false, "X-PagerDuty-Signature"},
		{"pagerduty several, none good", SourcePagerDuty,
			hdr("X-PagerDuty-Signature", "v1="+sign("a", pd)+",v1="+sign("b", pd)), pd, false, "X-PagerDuty-Signature"},
		{"pagerduty body altered", SourcePagerDuty, hdr("X-PagerDuty-Signature", "v1="+sign(secret, pd)), append([]byte(" "), pd...), false, "X-PagerDuty-Signature"},
		{"pagerduty missing", SourcePagerDuty, hdr(), pd, false, "X-PagerDuty-Signature"},
		{"pagerduty wrong scheme", SourcePagerDuty, hdr("X-PagerDuty-Signature", "v0="+sign(secret, pd)), pd, false, "X-PagerDuty-Signature"},
		{"pagerduty not hex", SourcePagerDuty, hdr("X-PagerDuty-Signature", "v1=zz"), pd, false, "X-PagerDuty-Signature"},
		{"github good", SourceGitHub, hdr("X-GitHub-Event", "issues", "X-Hub-Signature-256", "sha256="+sign(secret, gh)), gh, true, ""},
		{"github bad", SourceGitHub, hdr("X-GitHub-Event", "issues", "X-Hub-Signature-256", "sha256="+sign("x", gh)), gh, false, "X-Hub-Signature-256"},
		{"github sha1 only", SourceGitHub, hdr("X-GitHub-Event", "issues", "X-Hub-Signature", "sha1=abc"), gh, false, "X-Hub-Signature-256"},
		{"github missing", SourceGitHub, hdr("X-GitHub-Event", "issues"), gh, false, "X-Hub-Signature-256"},
		{"jira cloud good", SourceJira, hdr("X-Hub-Signature", "sha256="+sign(secret, jira)), jira, true, ""},
		{"jira cloud bad", SourceJira, hdr("X-Hub-Signature", "sha256="+sign("x", jira)), jira, false, "X-Hub-Signature"},
		{"jira server bearer", SourceJira, hdr("Authorization", "Bearer "+secret), jira, true, ""},
		{"jira missing", SourceJira, hdr(), jira, false, "X-Hub-Signature"},
		{"servicenow bearer good", SourceServiceNow, hdr("Authorization", "Bearer "+secret), sn, true, ""},
		{"servicenow bearer bad", SourceServiceNow, hdr("Authorization", "Bearer nope"), sn, false, "Authorization"},
		{"servicenow basic is not bearer", SourceServiceNow, hdr("Authorization", "Basic "+secret), sn, false, "Authorization"},
		{"servicenow missing", SourceServiceNow, hdr(), sn, false, "Authorization"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := withSecret(c.source, secret)
			if c.ok {
				closing(t, cfg, c.source, c.h, c.body)
				return
			}
			problem(t, cfg, c.source, c.h, c.body, http.StatusUnauthorized, c.field)
		})
	}
}

// The signature is checked before the body is parsed: an unsigned malformed
// body is a 401, not a 400.
func TestSignatureBeforeParsing(t *testing.T) {
	problem(t, withSecret(SourcePagerDuty, "k"), SourcePagerDuty, nil, []byte(`{`), http.StatusUnauthorized, "X-PagerDuty-Signature")
}

// Without a secret nothing is verified.
func TestNoSecretNoVerification(t *testing.T) {
	h := http.Header{}
	h.Set("X-PagerDuty-Signature", "v1=garbage")
	closing(t, DefaultConfig(), SourcePagerDuty, h, fixture(t, "pagerduty/incident_resolved.json"))
}
