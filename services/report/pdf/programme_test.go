package pdf

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestProgrammeReportLayout renders charts with gaps, zeros, negative and
// hostile labels and a long table: nothing panics, every section and value
// is in the text, in order.
func TestProgrammeReportLayout(t *testing.T) {
	t.Parallel()
	rows := make([][]string, 60)
	for i := range rows {
		rows[i] = []string{"incident " + strings.Repeat("x", i%7), "0195a5d0-1c22-7b00-8e31-5b7d9c0e2a02", "3.5 h"}
	}
	p := ProgrammeReport{Title: "Incident response programme report 2026-Q4", Subtitle: "The quarter", Intro: "Intro text.",
		ReportID: "r-1", Version: 2, DataSHA256: strings.Repeat("a", 64), GeneratedAt: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
		Summary: [][2]string{{"Incidents handled", "7"}},
		Charts: []Chart{
			{Title: "Bars", Kind: StackedBars, Unit: "incidents", Counts: true, Labels: []string{"2026-10", "2026-11", "2026-12"},
				Series: []ChartSeries{{Name: "phishing 🎣", Values: []float64{1, 0, 2}}, {Name: "malware", Values: []float64{math.NaN(), -1}}}},
			{Title: "Lines", Kind: Lines, Unit: "hours", Labels: []string{"2026-10", "2026-11", "2026-12"},
				Series: []ChartSeries{{Name: "to detection", Values: []float64{1.5, math.NaN(), 400}}}},
			{Title: "Nothing yet", Kind: StackedBars, Unit: "actions", Labels: []string{"2026-12"}},
		},
		Sections: []Section{
			{Heading: "Long table", Intro: "Sixty rows.", Columns: []string{"A", "B", "C"}, Widths: []float64{1, 2, 1}, Rows: rows},
			{Heading: "Empty table", Columns: []string{"A"}, Empty: "Nothing to list."},
		},
	}
	out, err := renderer(t).RenderProgramme(p)
	if err != nil {
		t.Fatal(err)
	}
	if out.Pages < 3 {
		t.Errorf("pages = %d, want the long table to run over pages", out.Pages)
	}
	ft := flat(pdfText(t, out.PDF))
	last := -1
	for _, w := range []string{"Incident response programme report 2026-Q4", "Incidents handled 7", "Bars", "phishing [U+1F3A3]",
		"Lines", "to detection", "Nothing yet", "Long table", "incident xxxxxx", "Empty table", "Nothing to list.",
		"Document integrity", strings.Repeat("a", 64)} {
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
}

func TestNiceStep(t *testing.T) {
	t.Parallel()
	for raw, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 3: 5, 7: 10, 80: 100, 130: 200} {
		if got := niceStep(raw); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}
