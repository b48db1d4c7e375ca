package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
)

// TestCorrectionPublishesNewReportVersion is the correction path end to end:
// after the report's first version is out, the ticket is reopened and closed
// with a corrected final cost; the review goes stale; the facilitator amends
// it with a reason and one more action item; the report gets an immutable
// second version beside the untouched first, and the tracker one new action.
func TestCorrectionPublishesNewReportVersion(t *testing.T) {
	t.Parallel()
	s := startTestStack(t)
	ctx := context.Background()
	tok := s.AdminToken
	inc := demoIncidentForTest(t, "SEC-E2E-AMEND")
	res, err := runScenario(ctx, s, inc, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.Version != 1 {
		t.Fatalf("first report: verified %v, version %d", res.Verified, res.Version)
	}
	reportURL := s.URLs["report"] + "/v1/reports/" + res.ReportID
	versionPDF := func(n int) []byte {
		t.Helper()
		var b []byte
		if err := call(ctx, http.MethodGet, fmt.Sprintf("%s/versions/%d/pdf", reportURL, n), tok, nil, &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	verify := func(pdf []byte) verifyAnswer {
		t.Helper()
		var v verifyAnswer
		if err := callRaw(ctx, s.URLs["report"]+"/v1/verify", tok, pdf, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1Before := versionPDF(1)
	if !bytes.Equal(v1Before, res.PDF) {
		t.Fatal("version 1 differs from the latest PDF right after publication")
	}

	// The ticket is reopened and closed again: the final cost was higher.
	if inc.Impact == nil || inc.Impact.EstimatedCost == nil {
		t.Fatal("the demo incident has no estimated cost to correct")
	}
	revised := inc
	impact := *inc.Impact
	impact.EstimatedCost = &events.Money{Amount: "21950.00", Currency: inc.Impact.EstimatedCost.Currency}
	revised.Impact = &impact
	publishIncident(t, s, revised)

	type review struct {
		ReviewID         string              `json:"review_id"`
		IncidentRevision int                 `json:"incident_revision"`
		Status           string              `json:"status"`
		Stale            bool                `json:"stale"`
		Amendment        int                 `json:"amendment"`
		Facilitator      *events.Contact     `json:"facilitator"`
		Summary          string              `json:"summary"`
		Findings         []events.Finding    `json:"findings"`
		ActionItems      []events.ActionItem `json:"action_items"`
	}
	current := func() review {
		t.Helper()
		var list struct {
			Reviews []review `json:"reviews"`
		}
		if err := getJSON(ctx, s.URLs["review"]+"/v1/reviews?incident_id="+res.IncidentID, tok, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Reviews) != 1 {
			t.Fatalf("reviews of the incident = %d, want 1", len(list.Reviews))
		}
		return list.Reviews[0]
	}
	var rv review
	if err := poll(ctx, "the review to go stale", 30*time.Second, func() (bool, error) {
		rv = current()
		return rv.Stale, nil
	}); err != nil {
		t.Fatal(err)
	}
	if rv.IncidentRevision != 2 || rv.Status != "completed" || len(rv.ActionItems) != 6 {
		t.Fatalf("stale review: revision %d, status %s, %d action items", rv.IncidentRevision, rv.Status, len(rv.ActionItems))
	}

	amendment := map[string]any{
		"reason":      "Final cost corrected from EUR 18,450.00 to EUR 21,950.00 after the ticket was reopened.",
		"facilitator": rv.Facilitator,
		"summary":     rv.Summary + " The final cost was corrected to EUR 21,950.00.",
		"findings": append(rv.Findings, events.Finding{Topic: "business_information",
			Summary: "Recovery costs were booked late, so the first report understated the final cost."}),
		"action_items": append(rv.ActionItems, events.ActionItem{Key: "cost-booking", Title: "Book incident recovery costs before closing the ticket",
			Category: events.CategoryProcess, Priority: events.PriorityMedium}),
	}
	var amended struct {
		Amendment int `json:"amendment"`
	}
	if err := call(ctx, http.MethodPost, s.URLs["review"]+"/v1/reviews/"+rv.ReviewID+"/amendments", tok, amendment, &amended); err != nil {
		t.Fatal(err)
	}
	if amended.Amendment != 1 {
		t.Errorf("amendment number %d, want 1", amended.Amendment)
	}

	var rep struct {
		Versions []struct {
			Version   int    `json:"version"`
			PDFSHA256 string `json:"pdf_sha256"`
		} `json:"versions"`
	}
	if err := poll(ctx, "report version 2", 60*time.Second, func() (bool, error) {
		err := getJSON(ctx, reportURL, tok, &rep)
		return err == nil && len(rep.Versions) >= 2, err
	}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, "the new action item", 30*time.Second, func() (bool, error) {
		return count(t, s, s.URLs["tracker"]+"/v1/actions?incident="+res.IncidentID, "actions") >= 7, nil
	}); err != nil {
		t.Fatal(err)
	}
	// Give any duplicate that slipped through time to show up before counting.
	time.Sleep(time.Second)

	if err := getJSON(ctx, reportURL, tok, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Versions) != 2 {
		t.Fatalf("report versions = %d, want exactly 2", len(rep.Versions))
	}
	v1, v2 := versionPDF(1), versionPDF(2)
	if !bytes.Equal(v1, v1Before) {
		t.Error("version 1's PDF changed after the correction; versions must be immutable")
	}
	if ok := verify(v1); !ok.Valid || ok.Version != 1 {
		t.Errorf("version 1 after the correction: valid %v (%s), version %d", ok.Valid, ok.Reason, ok.Version)
	}
	if bytes.Equal(v1, v2) {
		t.Error("version 2 is the same PDF as version 1")
	}
	if ok := verify(v2); !ok.Valid || ok.Version != 2 || ok.ReportID != res.ReportID {
		t.Errorf("version 2: valid %v (%s), report %s version %d", ok.Valid, ok.Reason, ok.ReportID, ok.Version)
	}
	var latest []byte
	if err := call(ctx, http.MethodGet, reportURL+"/pdf", tok, nil, &latest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(latest, v2) {
		t.Error("the latest PDF is not version 2")
	}
	if !bytes.HasPrefix(v2, []byte("%PDF-")) {
		t.Errorf("version 2 is not a PDF: %.20q", v2)
	}

	if n := count(t, s, s.URLs["tracker"]+"/v1/actions?incident="+res.IncidentID, "actions"); n != 7 {
		t.Errorf("action items = %d, want 7 (6 kept, 1 new)", n)
	}
	var registered struct {
		Revision int `json:"revision"`
	}
	if err := getJSON(ctx, s.URLs["intake"]+"/v1/incidents/"+res.IncidentID, tok, &registered); err != nil {
		t.Fatal(err)
	}
	if registered.Revision != 2 {
		t.Errorf("intake revision = %d, want 2", registered.Revision)
	}
	if rv := current(); rv.Stale || rv.Amendment != 1 || rv.IncidentRevision != 2 || len(rv.ActionItems) != 7 {
		t.Errorf("review after the amendment: stale %v, amendment %d, revision %d, %d action items",
			rv.Stale, rv.Amendment, rv.IncidentRevision, len(rv.ActionItems))
	}
}
