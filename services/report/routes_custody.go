package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/services/report/custody"
)

// caller names who made r for the custody log: the token's role, a
// fingerprint of the token (never the token) and the client address.
func (a *API) caller(r *http.Request) string {
	token := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	sum := sha256.Sum256([]byte(token))
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return fmt.Sprintf("%s (token sha256 %s…) from %s", a.Tokens.Role(r), hex.EncodeToString(sum[:4]), host)
}

// CustodyView is the answer of GET /v1/reports/{id}/custody.
type CustodyView struct {
	ReportID string          `json:"report_id"`
	Entries  []custody.Entry `json:"entries"`
	Check    custody.Check   `json:"check"`
	// HashRule says how every entry_sha256 is computed, for whoever checks an export.
	HashRule string `json:"hash_rule"`
}

// CustodyHashRule is the rule package custody documents, in one line.
const CustodyHashRule = `entry_sha256 = hex SHA-256 of the JSON array ["afteraction-custody-v1", report_id, seq, at (RFC 3339, UTC, nanoseconds), action, version, actor, detail, pdf_sha256, prev_sha256]; the first prev_sha256 is 64 zeros; each prev_sha256 is the entry_sha256 before it`

func (a *API) getCustody(w http.ResponseWriter, r *http.Request) {
	entries, err := a.Reader.Custody(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	view := CustodyView{ReportID: r.PathValue("id"), Entries: orEmpty(entries), Check: custody.Verify(entries), HashRule: CustodyHashRule}
	switch r.URL.Query().Get("format") {
	case "", "json":
		httpapi.WriteJSON(w, http.StatusOK, view)
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="custody-`+view.ReportID+`.txt"`)
		_, _ = w.Write([]byte(custodyText(view)))
	default:
		a.fail(w, r, badParam("format", "json or text"))
	}
}

// custodyText is the plain-text export: one block per entry with every field
// the hash covers, the hash rule, and the result of recomputing the chain.
func custodyText(v CustodyView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Chain of custody of afteraction report %s\nExported %s\n\n", v.ReportID, time.Now().UTC().Format(time.RFC3339))
	for _, e := range v.Entries {
		fmt.Fprintf(&b, "#%d  %s  %s  version %d\n  by:          %s\n  detail:      %s\n  pdf sha256:  %s\n  prev sha256: %s\n  this sha256: %s\n\n",
			e.Seq, e.At.Format(time.RFC3339Nano), strings.ToUpper(e.Action), e.Version, e.Actor, e.Detail, e.PDFSHA256, e.Prev, e.Hash)
	}
	verdict := "INTACT"
	if !v.Check.Valid {
		verdict = fmt.Sprintf("BROKEN at entry %d", v.Check.BrokenAt)
	}
	fmt.Fprintf(&b, "Check: %s: %s\nHash rule: %s\n", verdict, v.Check.Reason, v.HashRule)
	return b.String()
}

// deliveryRequest is the body of POST /v1/reports/{id}/custody/deliveries.
type deliveryRequest struct {
	Version   int    `json:"version"`
	Recipient string `json:"recipient"`
	Channel   string `json:"channel"`
	Reference string `json:"reference"`
}

func (a *API) recordDelivery(w http.ResponseWriter, r *http.Request) {
	var req deliveryRequest
	if _, err := httpapi.ReadJSON(r, 16<<10, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	var problems []httpapi.FieldError
	if req.Version < 1 {
		problems = append(problems, httpapi.FieldError{Field: "version", Reason: "a version number from 1"})
	}
	if strings.TrimSpace(req.Recipient) == "" || len(req.Recipient) > 500 {
		problems = append(problems, httpapi.FieldError{Field: "recipient", Reason: "required, at most 500 bytes"})
	}
	if len(req.Channel) > 200 || len(req.Reference) > 500 {
		problems = append(problems, httpapi.FieldError{Field: "channel", Reason: "channel ≤ 200 and reference ≤ 500 bytes"})
	}
	if len(problems) > 0 {
		a.fail(w, r, httpapi.NewProblem(http.StatusUnprocessableEntity, "invalid delivery", "", problems...))
		return
	}
	v, _, err := a.Reader.VersionPDF(r.Context(), r.PathValue("id"), req.Version)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	detail := "delivered to " + req.Recipient
	if req.Channel != "" {
		detail += " by " + req.Channel
	}
	if req.Reference != "" {
		detail += ", reference " + req.Reference
	}
	e, err := a.Reader.AppendCustody(r.Context(), custody.Entry{ReportID: v.ReportID, At: time.Now(), Action: custody.Delivered,
		Version: v.Version, Actor: a.caller(r), Detail: detail, PDFSHA256: v.PDFSHA256})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, e)
}

func (a *API) getRedacted(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		a.fail(w, r, badParam("n", "a version number from 1"))
		return
	}
	v, sum, pdf, err := a.Reader.RedactedPDF(r.Context(), r.PathValue("id"), n)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := a.Reader.AppendCustody(r.Context(), custody.Entry{ReportID: v.ReportID, At: time.Now(),
		Action: custody.Downloaded, Version: v.Version, Actor: a.caller(r), Detail: "redacted rendition: " + r.Method + " " + r.URL.Path,
		PDFSHA256: sum}); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", `"`+sum+`"`)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Length", strconv.Itoa(len(pdf)))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment",
		map[string]string{"filename": "report-" + v.ReportID + "-v" + strconv.Itoa(v.Version) + "-redacted.pdf"}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(pdf)
}
