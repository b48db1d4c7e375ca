package pdf

import (
	"strings"
	"testing"
	"time"
)

func TestTrainingPackShowsEveryCaseNewestFirst(t *testing.T) {
	t.Parallel()
	p := TrainingPack{Category: "phishing", GeneratedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Cases: []TrainingCase{
		{Title: "Finance mailbox compromised", Severity: "high", Subcategory: "business_email_compromise",
			ClosedAt: time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC), Summary: "Push MFA was approved by mistake.",
			Findings: "MFA push without number matching is not enough\nLook-alike domain registered five days before",
			Lessons:  "Report suspicious mail with the button", ReportID: "r-1"},
		{Title: "Gift-card scam drill", Severity: "low", ClosedAt: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC),
			ReportID: "r-2", Exercise: true},
	}}
	out, err := renderer(t).RenderTrainingPack(p)
	if err != nil {
		t.Fatal(err)
	}
	ft := flat(pdfText(t, out.PDF))
	want := []string{"Training pack: phishing", "2 reviewed incidents", "Case 1: Finance mailbox compromised",
		"business_email_compromise", "Push MFA was approved by mistake.", "MFA push without number matching is not enough",
		"Look-alike domain registered five days before", "Report suspicious mail with the button",
		"Case 2: Gift-card scam drill (exercise)", "The review recorded no findings.", "The participants recorded no lessons."}
	last := -1
	for _, w := range want {
		i := strings.Index(ft, w)
		if i < 0 {
			t.Errorf("pdftotext output lacks %q", w)
			continue
		}
		if i < last {
			t.Errorf("%q is out of order", w)
		}
		last = i
	}
	empty, err := renderer(t).RenderTrainingPack(TrainingPack{Category: "malware"})
	if err != nil {
		t.Fatal(err)
	}
	if ft := flat(pdfText(t, empty.PDF)); !strings.Contains(ft, "No reviewed incident of this category") {
		t.Errorf("empty pack: %q", ft)
	}
}
