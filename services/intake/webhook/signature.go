package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/afteraction/afteraction/pkg/httpapi"
)

// Signature headers of the sources that sign their webhooks.
const (
	headerPagerDuty = "X-PagerDuty-Signature" // v1=<hex>[,v1=<hex>...], one per active secret
	headerGitHub    = "X-Hub-Signature-256"   // sha256=<hex>
	headerJira      = "X-Hub-Signature"       // sha256=<hex> (Jira Cloud admin webhooks with a secret)
)

// verify checks the request against secret with the source's own scheme:
// HMAC-SHA256 of the raw body for PagerDuty, GitHub and Jira Cloud; for the
// sources that do not sign (Jira Server/DC, ServiceNow, Opsgenie, Statuspage,
// TheHive, canonical) the secret is a bearer token the sender puts in
// Authorization (custom headers in their webhook settings, or a proxy). An
// empty secret verifies nothing. Failures are 401 problems naming the header.
func verify(source, secret string, h http.Header, body []byte) error {
	if secret == "" {
		return nil
	}
	switch source {
	case SourcePagerDuty:
		return verifyHMAC(h, headerPagerDuty, "v1=", secret, body, true)
	case SourceGitHub:
		return verifyHMAC(h, headerGitHub, "sha256=", secret, body, false)
	case SourceJira:
		if h.Get(headerJira) != "" || h.Get("Authorization") == "" {
			return verifyHMAC(h, headerJira, "sha256=", secret, body, false)
		}
	}
	return verifyBearer(h, secret)
}

func unauthorized(field, reason string) error {
	return httpapi.NewProblem(http.StatusUnauthorized, "unverified webhook", "",
		httpapi.FieldError{Field: field, Reason: reason})
}

// verifyHMAC accepts the request when any of the signatures in header (comma
// separated when several is true) is prefix + hex(HMAC-SHA256(secret, body)).
func verifyHMAC(h http.Header, header, prefix, secret string, body []byte, several bool) error {
	values := h.Values(header)
	if len(values) == 0 || strings.TrimSpace(strings.Join(values, "")) == "" {
		return unauthorized(header, "signature header is missing; a secret is configured for this source")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := mac.Sum(nil)
	var sigs []string
	for _, v := range values {
		if several {
			sigs = append(sigs, strings.Split(v, ",")...)
		} else {
			sigs = append(sigs, v)
		}
	}
	seen := false
	for _, s := range sigs {
		s = strings.TrimSpace(s)
		hexSig, ok := strings.CutPrefix(s, prefix)
		if !ok {
			continue
		}
		seen = true
		got, err := hex.DecodeString(hexSig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	if !seen {
		return unauthorized(header, "no "+strings.TrimSuffix(prefix, "=")+" signature in the header")
	}
	return unauthorized(header, "signature does not match the body")
}

func verifyBearer(h http.Header, secret string) error {
	auth := h.Get("Authorization")
	if auth == "" {
		return unauthorized("Authorization", "bearer token is missing; a secret is configured for this source")
	}
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(secret)) != 1 {
		return unauthorized("Authorization", "bearer token does not match")
	}
	return nil
}
