package report_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
)

// personal is what the example review says about people and infrastructure
// that must not leave the organisation in the redacted rendition.
var personal = []string{"Annika", "Þórsdóttir", "Kemal Yıldız", "Yıldız", "Zoë Ågren", "Ågren", "José Ñúñez",
	"annika.thorsdottir@nordlicht-logistik.example", "nordlicht-logistik.example", "203.0.113.", "siem.nordlicht"}

func TestRedactMasksPeopleAndInfrastructure(t *testing.T) {
	t.Parallel()
	rv := exampleReview(t)
	r, err := report.NewRedactor(report.DefaultRedactRules, []string{`SEC-\d{4}-\d{4}`})
	if err != nil {
		t.Fatal(err)
	}
	red, err := r.Redact(rv)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(red)
	for _, s := range append(personal, "SEC-2026-0142") {
		if strings.Contains(string(b), s) {
			t.Errorf("the redacted data still contains %q", s)
		}
	}
	if red.IncidentID != rv.IncidentID || !red.CompletedAt.Equal(rv.CompletedAt) || red.Incident.Severity != rv.Incident.Severity ||
		len(red.Responses) != len(rv.Responses) || red.Responses[0].Participant.ParticipantID != rv.Responses[0].Participant.ParticipantID {
		t.Error("identifiers, times or enumerations changed")
	}
	if !strings.Contains(red.Facilitator.Name, "[person ") || red.Facilitator.Email != "[e-mail]" {
		t.Errorf("facilitator = %+v", red.Facilitator)
	}
	if _, err := report.NewRedactor([]string{"names", "phone numbers"}, nil); err == nil || !strings.Contains(err.Error(), "phone numbers") {
		t.Errorf("unknown rule: %v", err)
	}
	if _, err := report.NewRedactor(nil, []string{"("}); err == nil || !strings.Contains(err.Error(), "pattern 1") {
		t.Errorf("bad pattern: %v", err)
	}
}

func TestRedactedRenditionIsSignedMarkedAndSeparate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	r, err := report.NewRedactor(report.DefaultRedactRules, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.RedactWith(r)
	rv := exampleReview(t)
	reportID := report.ReportIDFor(rv.IncidentID)
	if err := f.svc.HandleReviewCompleted(ctx, message("e1"), rv); err != nil {
		t.Fatal(err)
	}
	v, sum, red, err := f.store.RedactedPDF(ctx, reportID, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, full, err := f.store.VersionPDF(ctx, reportID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sum == v.PDFSHA256 || len(red) == 0 {
		t.Fatal("the redacted rendition is the full version")
	}
	padestest.RequireValid(t, red)

	pages := strings.Split(strings.TrimRight(padestest.Text(t, red), "\f"), "\f")
	for i, p := range pages {
		if !strings.Contains(p, "REDACTED") {
			t.Errorf("page %d of %d is not marked REDACTED", i+1, len(pages))
		}
	}
	text := strings.Join(pages, "\n")
	for _, s := range personal {
		if strings.Contains(text, s) {
			t.Errorf("the redacted PDF still shows %q", s)
		}
	}
	if fullText := padestest.Text(t, full); !strings.Contains(fullText, "Kemal Yıldız") || strings.Contains(fullText, "REDACTED") {
		t.Error("the full version lost its names or is marked REDACTED")
	}
	entries, err := f.store.Custody(ctx, reportID)
	if err != nil || len(entries) != 3 || !strings.Contains(entries[1].Detail, "redacted rendition") || entries[1].PDFSHA256 != sum {
		t.Errorf("custody = %+v (%v), want the redacted rendition's rendering recorded", entries, err)
	}
}
