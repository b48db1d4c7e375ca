package pdf

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
)

func exampleReview(t testing.TB) events.ReviewCompleted {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.review.completed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	rv, err := events.Decode[events.ReviewCompleted](events.TypeReviewCompleted, b)
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

func exampleInput(t testing.TB) Input {
	return Input{
		Review:      exampleReview(t),
		ReportID:    "0195b1e4-5a6b-5c8d-9e0f-1a2b3c4d5e6f",
		Version:     1,
		DataSHA256:  strings.Repeat("ab", 32),
		GeneratedAt: time.Date(2026, 3, 20, 11, 5, 7, 0, time.UTC),
	}
}

var (
	rendererOnce sync.Once
	shared       *Renderer
	sharedErr    error
)

func renderer(t testing.TB) *Renderer {
	t.Helper()
	rendererOnce.Do(func() { shared, sharedErr = NewRenderer() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// pdfText returns the text of a PDF via pdftotext, or skips when it is not installed.
func pdfText(t *testing.T, pdf []byte) string { return padestest.Text(t, pdf) }

func qpdfCheck(t *testing.T, pdf []byte) {
	t.Helper()
	bin, err := exec.LookPath("qpdf")
	if err != nil {
		t.Log("qpdf not installed; structural check skipped")
		return
	}
	path := filepath.Join(t.TempDir(), "check.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--check", path).CombinedOutput(); err != nil {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
}

// flat joins the lines pdftotext wrapped, so phrases can be found whole.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestRenderExampleHasTitleAndEveryHeading(t *testing.T) {
	t.Parallel()
	in := exampleInput(t)
	out, err := renderer(t).Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Pages < 2 {
		t.Errorf("pages = %d, want a multi-page report", out.Pages)
	}
	qpdfCheck(t, out.PDF)
	text := pdfText(t, out.PDF)
	ft := flat(text)
	want := append([]string{in.Review.Incident.Title, "POST-INCIDENT REPORT", in.Review.IncidentID,
		in.DataSHA256, in.ReportID, "afteraction verify",
		// UTF-8 names survive into the text layer
		"Annika Þórsdóttir", "Łukasz Wiśniewski", "Kemal Yıldız",
		// answers, findings, action items, cost
		"Look-alike domain registrations", "MFA push without number matching",
		"Call-back verification for every", "18,450.00 EUR",
		"Page 1 of", "Time to contain", "2 h 33 min"}, Headings...)
	for _, w := range want {
		if !strings.Contains(ft, w) {
			t.Errorf("pdftotext output lacks %q", w)
		}
	}
	if strings.Contains(text, "[U+") {
		t.Errorf("the example needed replacement characters; the fonts should cover it:\n%s", text)
	}
	if strings.Contains(ft, "{nb}") {
		t.Error("the page-count alias was not replaced")
	}
	last := "Page " + itoa(out.Pages) + " of " + itoa(out.Pages)
	if !strings.Contains(ft, last) {
		t.Errorf("footer %q missing", last)
	}
	if os.Getenv("REPORT_PDF_OUT") != "" {
		_ = os.WriteFile(os.Getenv("REPORT_PDF_OUT"), out.PDF, 0o644)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestRenderIsDeterministic(t *testing.T) {
	t.Parallel()
	in := exampleInput(t)
	a, err := renderer(t).Render(in)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := NewRenderer() // a separate renderer must agree too
	if err != nil {
		t.Fatal(err)
	}
	b, err := r2.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.PDF, b.PDF) {
		t.Fatalf("same input rendered different bytes: %x vs %x", sha256.Sum256(a.PDF), sha256.Sum256(b.PDF))
	}
	in.Version = 2
	c, err := renderer(t).Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.PDF, c.PDF) {
		t.Fatal("a different version rendered identical bytes")
	}
	if !bytes.Contains(a.PDF, []byte("D:20260320110507")) {
		t.Error("creation date is not taken from GeneratedAt")
	}
}

func hostileInput(t testing.TB) Input {
	in := exampleInput(t)
	rv := &in.Review
	hostile := "Emoji 😀🔥👩‍💻 em dash — en dash – RTL עברית العربية CJK 漢字かなカナ한국어 " +
		"NUL\x00 BEL\x07 ESC\x1b[31m DEL\x7f zero-width\u200b\u200d bidi\u202e override\u202c " +
		"soft\u00adhyphen invalid \xff\xfe bytes tab\there CRLF\r\nline \U0010FFFF private \ue000"
	rv.Incident.Title = hostile
	rv.Summary = strings.Repeat(hostile+" ", 3) + strings.Repeat("long text without any break ", 1) +
		strings.Repeat("x", 3000)
	rv.Incident.Summary = strings.Repeat("Lorem ipsum dolor sit amet — consectetur 😀 adipiscing. ", 900) // ~50 KB
	rv.Facilitator.Name = hostile
	rv.Incident.Timeline = nil
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for i := range 500 {
		rv.Incident.Timeline = append(rv.Incident.Timeline, events.TimelineEntry{
			At: base.Add(time.Duration(i) * time.Minute), Actor: hostile[:40], Phase: events.PhaseAnalysis,
			Action: "Row " + itoa(i) + " " + hostile,
		})
	}
	rv.Incident.Timeline[3].Detail = strings.Repeat("A very long cell that spans pages. ", 1500) // ~50 KB in one cell
	rv.Findings = append(rv.Findings, events.Finding{Topic: "unknown_topic", Summary: hostile, Detail: hostile})
	rv.Questions = append(rv.Questions, events.Question{ID: "odd", Topic: "😀", Prompt: hostile, Kind: events.QuestionText})
	rv.Responses[0].Answers = append(rv.Responses[0].Answers, events.Answer{QuestionID: "odd", Text: hostile})
	rv.ActionItems[0].Title = hostile
	rv.ActionItems[0].Description = strings.Repeat("—", 5000)
	rv.Incident.People[0].Name = hostile
	rv.Incident.Source, rv.Incident.ExternalID = hostile, strings.Repeat("W", 500)
	return in
}

func TestRenderHostileStrings(t *testing.T) {
	t.Parallel()
	in := hostileInput(t)
	out, err := renderer(t).Render(in)
	if err != nil {
		t.Fatal(err)
	}
	qpdfCheck(t, out.PDF)
	text := pdfText(t, out.PDF)
	for _, w := range []string{"[U+1F600]", "[U+05E2]", "[U+6F22]", "em dash — en dash", HeadingIntegrity,
		"Row 499 ", "A very long cell that spans pages."} {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q", w)
		}
	}
	for _, bad := range []string{"\x00", "\x07", "\x1b", "\u202e", "{nb}"} {
		if strings.Contains(text, bad) {
			t.Errorf("text contains %q", bad)
		}
	}
	if n := strings.Count(text, "spans"); n != 1500 {
		t.Errorf("the 50 KB cell lost text: %d of 1500 sentences (by the word 'spans')", n)
	}
}

func TestRenderEmptyReview(t *testing.T) {
	t.Parallel()
	in := Input{Review: events.ReviewCompleted{}, ReportID: "r", Version: 1}
	out, err := renderer(t).Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.PDF, []byte("/CreationDate (D:19700101000000")) {
		t.Error("empty review without dates: the creation date is not the fixed epoch, so the bytes depend on when it was rendered")
	}
	ft := flat(pdfText(t, out.PDF))
	for _, h := range Headings {
		if !strings.Contains(ft, h) {
			t.Errorf("empty review: heading %q missing", h)
		}
	}
}

func TestRenderConcurrently(t *testing.T) {
	t.Parallel()
	in := exampleInput(t)
	want, err := renderer(t).Render(in)
	if err != nil {
		t.Fatal(err)
	}
	renders := make([]func() error, 8)
	for i := range renders {
		renders[i] = func() error {
			got, err := renderer(t).Render(in)
			if err == nil && !bytes.Equal(got.PDF, want.PDF) {
				err = errors.New("concurrent render differs")
			}
			return err
		}
	}
	concurrently(t, renders...)
}

// concurrently runs fns in goroutines of their own and reports their errors.
func concurrently(t *testing.T, fns ...func() error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(fns))
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestRenderPanicBecomesErrRender(t *testing.T) {
	t.Parallel()
	r := &Renderer{} // no fonts, no coverage: fpdf fails on the unknown family
	_, err := r.Render(exampleInput(t))
	if !errors.Is(err, ErrRender) {
		t.Fatalf("err = %v, want ErrRender", err)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	c := renderer(t).cover
	tests := []struct{ in, line, multi string }{
		{"a\x00b\x1bc", "abc", "abc"},
		{"x\ny", "x y", "x\ny"},
		{"x\r\ny\rz", "x y z", "x\ny\nz"},
		{"😀", "[U+1F600]", "[U+1F600]"},
		{"Łódź — “ok”", "Łódź — “ok”", "Łódź — “ok”"},
		{"\xff", "[U+FFFD]", "[U+FFFD]"},
		{"a\u200db\ufe0f", "ab", "ab"},
	}
	for _, tt := range tests {
		if got := c.clean(tt.in, false); got != tt.line && !(tt.in == "\xff" && got == "\uFFFD") {
			t.Errorf("clean(%q, line) = %q, want %q", tt.in, got, tt.line)
		}
		if got := c.clean(tt.in, true); got != tt.multi && !(tt.in == "\xff" && got == "\uFFFD") {
			t.Errorf("clean(%q, multi) = %q, want %q", tt.in, got, tt.multi)
		}
	}
}

// benchRender renders inputs in turn.
func benchRender(b *testing.B, r *Renderer, inputs ...Input) {
	b.ReportAllocs()
	var size, i int
	for b.Loop() {
		out, err := r.Render(inputs[i%len(inputs)])
		if err != nil {
			b.Fatal(err)
		}
		size = len(out.PDF)
		i++
	}
	b.ReportMetric(float64(size), "pdf-bytes")
}

// BenchmarkRender renders the example review with the embedded UTF-8 Go
// fonts. Every document after the first uses the runes the first used, so
// its font subsets come from the Renderer's cache.
func BenchmarkRender(b *testing.B) {
	benchRender(b, renderer(b), exampleInput(b))
}

// BenchmarkRenderDistinct renders the example with one more Cyrillic letter
// in its title (bold) and summary (regular), a different one each time and
// from more letters than a font's subset cache keeps: no document finds its
// subsets cached, as for a report whose runes no recent report used.
func BenchmarkRenderDistinct(b *testing.B) {
	benchRender(b, renderer(b), distinctInputs(b, 64)...)
}

// distinctInputs returns n examples that each use a rune, in both faces,
// that the others do not.
func distinctInputs(t testing.TB, n int) []Input {
	inputs := make([]Input, n)
	for i := range inputs {
		letter := " " + string(rune(0x410+i))
		inputs[i] = exampleInput(t)
		inputs[i].Review.Incident.Title += letter
		inputs[i].Review.Summary += letter
	}
	return inputs
}

// BenchmarkRenderCoreFont renders the same document with the core font
// Helvetica and ASCII only (what a report would cost without UTF-8 fonts).
// Compare: go test -run '^$' -bench 'BenchmarkRender' ./pdf
func BenchmarkRenderCoreFont(b *testing.B) {
	benchRender(b, newCoreFontRenderer(), exampleInput(b))
}

func TestAmendedVersionSaysWhatWasCorrected(t *testing.T) {
	t.Parallel()
	in := exampleInput(t)
	at := in.Review.CompletedAt.Add(72 * time.Hour)
	in.Review.Amendment, in.Review.AmendmentReason, in.Review.AmendedAt = 2, "Final cost corrected after the insurer’s assessment.", &at
	out, err := renderer(t).Render(in)
	if err != nil {
		t.Fatal(err)
	}
	ft := flat(pdfText(t, out.PDF))
	for _, w := range []string{"Amendment 2", "Final cost corrected after the insurer’s assessment.", "renders amendment 2 of the review"} {
		if !strings.Contains(ft, w) {
			t.Errorf("pdftotext output lacks %q", w)
		}
	}
}
