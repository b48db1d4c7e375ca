package review

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/afteraction/afteraction/pkg/events"
)

func TestParticipantRulesOnOpenAndRevision(t *testing.T) {
	t.Parallel()
	rules, err := ParseRules(`[
		{"name": "ciso-critical", "severities": ["critical"], "person": {"name": "Cleo CISO", "email": "ciso@example.com", "role": "management"}},
		{"name": "mail-phishing", "categories": ["Phishing"], "person": {"name": "Mail Team", "email": "mail@example.com", "role": "other"}},
		{"name": "erp", "assets": ["erp-prod"], "person": {"name": "ERP Owner", "email": "erp@example.com", "role": "business_owner"}}
	]`)
	if err != nil {
		t.Fatal(err)
	}
	f := setupWith(t, func(c *ServiceConfig) { c.Rules = rules })
	e := registered(t) // high, phishing
	r := f.open(e)
	byRule := map[string]string{}
	for _, p := range r.Participants {
		byRule[p.AddedBy] = p.Name
	}
	if byRule["rule:mail-phishing"] != "Mail Team" || byRule["rule:ciso-critical"] != "" || byRule["rule:erp"] != "" {
		t.Errorf("rule participants on open = %v, want the mail team only", byRule)
	}
	opened := f.outbox(events.TypeReviewOpened)
	if !strings.Contains(string(opened[0]), "mail@example.com") {
		t.Error("review.opened does not list the participant added by rule")
	}

	e.Revision = 2
	e.Incident.Severity = events.SeverityCritical
	e.Incident.AffectedAssets = append(e.Incident.AffectedAssets, events.Asset{Name: "ERP", Identifier: "erp-prod"})
	f.handle(e)
	r = f.only(e.IncidentID)
	count := map[string]int{}
	for _, p := range r.Participants {
		count[p.AddedBy]++
	}
	if count["rule:ciso-critical"] != 1 || count["rule:erp"] != 1 || count["rule:mail-phishing"] != 1 {
		t.Errorf("rule participants after revision = %v, want one of each rule", count)
	}

	for _, bad := range []string{`[{"name": "x", "person": {"name": "A\nB", "email": "a@example.com", "role": "other"}}]`,
		`[{"name": "x", "person": {"name": "A", "email": "nope", "role": "other"}}]`,
		`[{"name": "x", "person": {"name": "A", "email": "a@example.com", "role": "ceo"}}]`,
		`[{"name": "x", "severities": ["urgent"], "person": {"name": "A", "email": "a@example.com", "role": "other"}}]`,
		`[{"name": "x", "unknown": 1}]`} {
		if _, err := ParseRules(bad); err == nil {
			t.Errorf("ParseRules(%s) = nil error", bad)
		}
	}
}

func TestManageParticipantsByAPI(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.open(registered(t))
	base := f.serve()
	url := base + "/v1/reviews/" + r.ReviewID + "/participants"

	code, body := call(t, "POST", url, facilitatorToken, "",
		`{"name": "Evil\r\nBcc: x", "email": "a@b@c", "role": "emperor"}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"name"`) || !strings.Contains(body, `"email"`) || !strings.Contains(body, `"role"`) {
		t.Fatalf("bad participant: %d %s, want 422 naming name, email and role", code, body)
	}
	long := strings.Repeat("x", 201)
	if code, body := call(t, "POST", url, facilitatorToken, "", `{"name": "`+long+`", "email": "l@example.com", "role": "legal"}`); code != 422 || !strings.Contains(body, "at most 200") {
		t.Errorf("over-long name: %d %s", code, body)
	}
	if n := len(f.only(r.IncidentID).Participants); n != len(r.Participants) {
		t.Fatalf("participants after bad input = %d, want %d", n, len(r.Participants))
	}
	if code, body := call(t, "POST", url, complianceToken, "", `{"name": "A", "email": "a@example.com", "role": "legal"}`); code != http.StatusForbidden {
		t.Errorf("compliance adding: %d %s, want 403", code, body)
	}
	code, body = call(t, "POST", url, facilitatorToken, "", `{"name": "Lea Legal", "email": "lea@example.com", "role": "legal"}`)
	if code != http.StatusCreated || !strings.Contains(body, `"added_by": "role:facilitator"`) {
		t.Fatalf("add: %d %s", code, body)
	}
	if code, _ := call(t, "POST", url, facilitatorToken, "", `{"name": "Lea L.", "email": "LEA@example.com", "role": "legal"}`); code != http.StatusConflict {
		t.Errorf("adding the same e-mail again: %d, want 409", code)
	}

	invitations := func(reason string) int {
		n := 0
		for _, raw := range f.outbox(events.TypeReviewInvitation) {
			if strings.Contains(string(raw), `"reason":"`+reason+`"`) && strings.Contains(string(raw), "lea@example.com") {
				n++
			}
		}
		return n
	}
	if n := invitations("added"); n != 1 {
		t.Errorf("invitation events for the added participant = %d, want 1", n)
	}
	// Resend gives a new link and kills the old one, nobody else's.
	lea := f.only(r.IncidentID).Participants[len(r.Participants)]
	other := f.only(r.IncidentID).Participants[0]
	ctx := context.Background()
	resent, err := f.svc.RenewInvitation(ctx, r.ReviewID, lea.ParticipantID, "person:fac", false)
	if err != nil || resent.InvitationToken == lea.InvitationToken {
		t.Fatalf("resend: %v, same token %v", err, resent.InvitationToken == lea.InvitationToken)
	}
	if n := invitations("resent"); n != 1 {
		t.Errorf("invitation events after a resend = %d, want 1", n)
	}
	if _, _, err := f.svc.Invitee(ctx, r.ReviewID, lea.InvitationToken); !errors.Is(err, ErrInvalidInvite) {
		t.Errorf("old link after resend: %v, want ErrInvalidInvite", err)
	}
	if _, p, err := f.svc.Invitee(ctx, r.ReviewID, resent.InvitationToken); err != nil || p.ID != lea.ParticipantID {
		t.Errorf("new link: %v", err)
	}
	if _, _, err := f.svc.Invitee(ctx, r.ReviewID, other.InvitationToken); err != nil {
		t.Errorf("someone else's link after a resend: %v", err)
	}
	// Revoke by API: the link stops working; the participant shows as revoked without a link.
	code, body = call(t, "POST", url+"/"+lea.ParticipantID+"/revoke", facilitatorToken, "", ``)
	if code != http.StatusOK || !strings.Contains(body, `"revoked": true`) || strings.Contains(body, "invitation_token") {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if code, _ := call(t, "GET", base+"/v1/reviews/"+r.ReviewID+"/questions", resent.InvitationToken, "", ""); code != http.StatusUnauthorized {
		t.Errorf("questions with a revoked invitation: %d, want 401", code)
	}
	// notify is told, without the link, so that it reminds Lea no more.
	if n := invitations("withdrawn"); n != 1 {
		t.Errorf("withdrawal events after a revoke = %d, want 1", n)
	}
	for _, raw := range f.outbox(events.TypeReviewInvitation) {
		if strings.Contains(string(raw), `"reason":"withdrawn"`) && strings.Contains(string(raw), "form_url") {
			t.Errorf("a withdrawal carries a link: %s", raw)
		}
	}
	// Remove: gone from the list; someone who answered cannot be removed.
	if code, _ := call(t, "POST", url+"/"+lea.ParticipantID+"/remove", facilitatorToken, "", ``); code != http.StatusNoContent {
		t.Errorf("remove: %d, want 204", code)
	}
	if n := len(f.only(r.IncidentID).Participants); n != len(r.Participants) {
		t.Errorf("participants after removal = %d, want %d", n, len(r.Participants))
	}
	if n := invitations("withdrawn"); n != 2 {
		t.Errorf("withdrawal events after a revoke and a removal = %d, want 2", n)
	}
	if _, err := f.submit(r, 0, events.Answer{QuestionID: "what_happened.account", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "POST", url+"/"+other.ParticipantID+"/remove", facilitatorToken, "", ``); code != http.StatusConflict || !strings.Contains(body, "revoke") {
		t.Errorf("removing someone who answered: %d %s, want 409", code, body)
	}
	changes, err := f.svc.ParticipantChanges(ctx, r.ReviewID)
	if err != nil || len(changes) != 4 {
		t.Errorf("participant audit: %d entries, %v; want added, resent, revoked, removed", len(changes), err)
	}
}

func TestConditionalQuestionsEnforcedByServer(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.open(registered(t))
	steps := events.Answer{QuestionID: "team_performance.steps_not_followed", Text: "Skipped the call-back."}
	_, err := f.submit(r, 0, events.Answer{QuestionID: "team_performance.procedures_followed", Choice: "fully"}, steps)
	var verr *ValidationError
	if !errors.As(err, &verr) || verr.Problems[0].Field != "answers[1].question_id" || !strings.Contains(verr.Problems[0].Reason, "partly") {
		t.Fatalf("hidden question answered: %v, want a validation error on answers[1]", err)
	}
	if _, err := f.submit(r, 0, events.Answer{QuestionID: "team_performance.procedures_followed", Choice: "partly"}, steps); err != nil {
		t.Errorf("conditional question answered when shown: %v", err)
	}
	// A hidden question is never required: its trigger alone is a full answer.
	if _, err := f.submit(r, 1, events.Answer{QuestionID: "team_performance.procedures_followed", Choice: "not followed"}); err != nil {
		t.Errorf("trigger without the conditional answer: %v", err)
	}
}

func TestSecondApprovalRejectAndApprove(t *testing.T) {
	t.Parallel()
	f := setupWith(t, func(c *ServiceConfig) { c.ApprovalSeverities = []events.Severity{events.SeverityHigh} })
	r := f.open(registered(t))
	base := f.serve()
	code, body := call(t, "POST", base+"/v1/reviews/"+r.ReviewID+"/complete", facilitatorToken, "", `{"summary": "s"}`)
	if code != http.StatusAccepted || !strings.Contains(body, `"awaiting_approval"`) {
		t.Fatalf("complete needing approval: %d %s, want 202 awaiting_approval", code, body)
	}
	ctx := context.Background()
	if _, err := f.svc.Approve(ctx, r.ReviewID, "role:facilitator"); !errors.Is(err, ErrConflict) {
		t.Errorf("approval by who signed off: %v, want ErrConflict", err)
	}
	var verr *ValidationError
	if err := f.svc.Reject(ctx, r.ReviewID, "person:appr", " "); !errors.As(err, &verr) {
		t.Errorf("reject without a reason: %v, want a validation error", err)
	}
	if err := f.svc.Reject(ctx, r.ReviewID, "person:appr", "Findings are missing."); err != nil {
		t.Fatal(err)
	}
	back := f.only(r.IncidentID)
	if back.Status != "open" || back.SignOff.RejectionReason != "Findings are missing." || back.SignOff.RejectedBy != "person:appr" {
		t.Fatalf("after rejection: status %s, sign-off %+v", back.Status, back.SignOff)
	}
	if _, err := f.svc.SignOff(ctx, r.ReviewID, "person:fac", CompleteRequest{Summary: "s",
		Findings: []events.Finding{{Summary: "f"}}}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 0 {
		t.Fatalf("review.completed before approval: %d", n)
	}
	done, err := f.svc.Approve(ctx, r.ReviewID, "person:appr")
	if err != nil || len(done.Findings) != 1 {
		t.Fatalf("approve: %v, %+v", err, done)
	}
	final := f.only(r.IncidentID)
	if final.Status != "completed" || final.SignOff.SignedOffBy != "person:fac" || final.SignOff.ApprovedBy != "person:appr" {
		t.Errorf("completed: status %s, sign-off %+v", final.Status, final.SignOff)
	}
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 1 {
		t.Errorf("review.completed events = %d, want 1", n)
	}
}

func TestParseAccounts(t *testing.T) {
	t.Parallel()
	h := hashPasswordWith("pw", argon2Params{memory: 1024, time: 1, threads: 1})
	accts, err := ParseAccounts("jane:facilitator,approver:jane@example.com:" + h + ":Jane Doe: the second")
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := accts.Authenticate("jane", "pw"); !ok || a.Name != "Jane Doe: the second" || !a.Has(RoleApprover) {
		t.Errorf("Authenticate = %+v, %v", a, ok)
	}
	if _, ok := accts.Authenticate("jane", "PW"); ok {
		t.Error("a wrong password authenticates")
	}
	if _, ok := accts.Authenticate("nobody", "pw"); ok {
		t.Error("an unknown login authenticates")
	}
	for _, bad := range []string{"jane:facilitator:j@example.com:" + h,
		"jane:king:j@example.com:" + h + ":Jane", "jane:admin:j@example.com:$argon2id$v=19$nope:Jane",
		"ja ne:admin::" + h + ":Jane", "jane:admin:not-mail:" + h + ":Jane"} {
		if _, err := ParseAccounts(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseAccounts(%q) = %v, want an error naming line 1", bad, err)
		}
	}
	if !strings.HasPrefix(HashPassword("x"), "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Error("HashPassword does not use argon2id with OWASP's parameters")
	}
}
