package pdf

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
)

// TestParsedFontsWriteWhatFontBytesWrite checks the fpdf patch under
// third_party/fpdf: a document drawn with fonts parsed once
// (AddUTF8FontParsed), its subsets cut afresh, taken from the subset cache or
// cut again after the cache dropped them, is byte for byte the document fpdf
// writes when it parses the fonts itself (AddUTF8FontFromBytes).
func TestParsedFontsWriteWhatFontBytesWrite(t *testing.T) {
	t.Parallel()
	regular, err := fpdf.ParseUTF8Font(goregular.TTF)
	if err != nil {
		t.Fatal(err)
	}
	bold, err := fpdf.ParseUTF8Font(gobold.TTF)
	if err != nil {
		t.Fatal(err)
	}
	fromBytes := func(f *fpdf.Fpdf) {
		f.AddUTF8FontFromBytes("go", "", goregular.TTF)
		f.AddUTF8FontFromBytes("go", "B", gobold.TTF)
	}
	parsed := func(f *fpdf.Fpdf) {
		f.AddUTF8FontParsed("go", "", regular)
		f.AddUTF8FontParsed("go", "B", bold)
	}
	const text = "Annika Þórsdóttir, Łukasz Wiśniewski, Kemal Yıldız — “quoted” Ελληνικά Кириллица 0123456789"
	want := fontDoc(t, fromBytes, text)
	if got := fontDoc(t, parsed, text); !bytes.Equal(got, want) {
		t.Fatal("parsed fonts, subsets cut afresh: the document differs")
	}
	if got := fontDoc(t, parsed, text); !bytes.Equal(got, want) {
		t.Fatal("parsed fonts, subsets from the cache: the document differs")
	}
	var other string
	for i := range 40 { // more rune sets than a font's cache keeps
		other = text + string(rune(0x430+i))
		fontDoc(t, parsed, other)
	}
	if got, want := fontDoc(t, parsed, other), fontDoc(t, fromBytes, other); !bytes.Equal(got, want) {
		t.Fatal("parsed fonts, another rune set: the document differs")
	}
	if got := fontDoc(t, parsed, text); !bytes.Equal(got, want) {
		t.Fatal("parsed fonts, subsets cut again after the cache dropped them: the document differs")
	}
}

// TestEncryptedDocumentLeavesCachedSubsetsAlone: fpdf encrypts streams in
// place, so a protected document must not encrypt the cached subsets other
// documents then write.
func TestEncryptedDocumentLeavesCachedSubsetsAlone(t *testing.T) {
	t.Parallel()
	regular, err := fpdf.ParseUTF8Font(goregular.TTF)
	if err != nil {
		t.Fatal(err)
	}
	bold, err := fpdf.ParseUTF8Font(gobold.TTF)
	if err != nil {
		t.Fatal(err)
	}
	parsed := func(f *fpdf.Fpdf) {
		f.AddUTF8FontParsed("go", "", regular)
		f.AddUTF8FontParsed("go", "B", bold)
	}
	const text = "Łukasz Wiśniewski — Ελληνικά"
	want := fontDoc(t, parsed, text)
	protected := fontDoc(t, func(f *fpdf.Fpdf) { parsed(f); f.SetProtection(fpdf.CnProtectPrint, "user", "owner") }, text)
	if bytes.Equal(protected, want) {
		t.Fatal("the protected document is not encrypted")
	}
	if got := fontDoc(t, parsed, text); !bytes.Equal(got, want) {
		t.Fatal("after a protected document, the same unprotected document differs: its cached subsets were encrypted")
	}
}

func TestAddUTF8FontParsedRefusesNoFont(t *testing.T) {
	t.Parallel()
	f := fpdf.New("P", "mm", "A4", "")
	f.AddUTF8FontParsed("go", "", nil)
	if err := f.Error(); err == nil {
		t.Fatal("adding a nil font did not fail the document")
	}
}

// fontDoc draws text in the regular and bold faces add registers as "go".
func fontDoc(t *testing.T, add func(*fpdf.Fpdf), text string) []byte {
	t.Helper()
	f := fpdf.New("P", "mm", "A4", "")
	f.AliasNbPages("{nb}")
	add(f)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.SetCatalogSort(true)
	f.SetCreationDate(at)
	f.SetModificationDate(at)
	f.AddPage()
	f.SetFont("go", "", 11)
	f.MultiCell(0, 5, text, "", "L", false)
	f.SetFont("go", "B", 11)
	f.Write(5, text+" (page 1 of {nb})")
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRenderConcurrentlySharesFonts renders documents that use different
// runes on one Renderer from several goroutines, each twice, so the shared
// fonts are cut and their subsets cached and reused concurrently, and checks
// each against the same document from a fresh Renderer. Run it with -race.
func TestRenderConcurrentlySharesFonts(t *testing.T) {
	t.Parallel()
	inputs := distinctInputs(t, 4)
	fresh, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]byte, len(inputs))
	for i, in := range inputs {
		out, err := fresh.Render(in)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out.PDF
	}
	shared, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	var renders []func() error
	for range 2 {
		for i, in := range inputs {
			renders = append(renders, func() error {
				out, err := shared.Render(in)
				if err == nil && !bytes.Equal(out.PDF, want[i]) {
					err = fmt.Errorf("document %d rendered concurrently differs from the same rendered alone", i)
				}
				return err
			})
		}
	}
	concurrently(t, renders...)
}
