// Package pdf renders the final incident report of a completed lessons-learned
// review as a PDF. It is pure: the same Input always yields the same bytes (the
// creation date comes from the input and the producer is fixed), and it does
// no I/O.
//
// Text is drawn with the Go fonts embedded as UTF-8 TrueType fonts. Every
// string is sanitised before it is drawn: control and other invisible
// characters are removed and characters the fonts lack are replaced by a
// visible "[U+XXXX]", so hostile input neither panics nor vanishes.
//
// Cost: a Renderer parses the two Go faces the layout uses (regular and
// bold) once, and every document shares them (fpdf.ParseUTF8Font and
// AddUTF8FontParsed, a patch of codeberg.org/go-pdf/fpdf v0.12.0 under
// third_party/fpdf). fpdf subsets each face to the runes a document used and
// keeps the last 32 compressed subsets per face, so a document whose runes a
// recent one used cuts and compresses nothing. Pages are written
// uncompressed and deflatePages compresses them with zlib writers kept on a
// free list. BenchmarkRender, BenchmarkRenderDistinct (no subset cached) and
// BenchmarkRenderCoreFont measure the whole.
package pdf

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/afteraction/afteraction/pkg/events"
)

// ErrRender is wrapped by every error Render returns: the report cannot be
// rendered from this input, and rendering it again will fail the same way.
var ErrRender = errors.New("render report pdf")

// Producer is written into every PDF's document information.
const Producer = "afteraction report renderer (codeberg.org/go-pdf/fpdf)"

// Input is everything a report is rendered from.
type Input struct {
	// Review is the completed review: incident, answers, findings, action items.
	Review events.ReviewCompleted
	// ReportID and Version identify the report version being rendered.
	ReportID string
	Version  int
	// DataSHA256 is the hex SHA-256 of the canonical review data, printed in
	// the document-integrity block.
	DataSHA256 string
	// GeneratedAt is printed on the cover and used as the PDF's creation date.
	GeneratedAt time.Time
	// CertSubject and CertSHA256 name the certificate that will sign the
	// PDF, printed in the document-integrity block.
	CertSubject, CertSHA256 string
	// Redacted marks the rendition for external distribution: "REDACTED" on
	// every page and a note on the cover saying what was masked.
	Redacted bool
	// Retention (until when the evidence behind the report is kept) and
	// LegalHold (the hold in force when it was rendered) are printed in the
	// document-integrity block; "" leaves the row out.
	Retention, LegalHold string
}

// Output is a rendered report.
type Output struct {
	PDF   []byte
	Pages int
}

// Renderer renders reports. It is safe for concurrent use; create one per
// process and reuse it.
type Renderer struct {
	regular, bold *fpdf.UTF8Font // parsed once, shared by every document
	family        string         // "" means the Go fonts above
	cover         coverage
	writers       zlibWriters
}

// NewRenderer returns a Renderer using the Go fonts (Latin, Greek, Cyrillic),
// parsed once here. It fails only if the embedded fonts cannot be parsed.
func NewRenderer() (*Renderer, error) {
	cov, err := newCoverage(goregular.TTF, gobold.TTF)
	if err != nil {
		return nil, fmt.Errorf("font coverage: %w", err)
	}
	regular, err := fpdf.ParseUTF8Font(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("parse Go regular font: %w", err)
	}
	bold, err := fpdf.ParseUTF8Font(gobold.TTF)
	if err != nil {
		return nil, fmt.Errorf("parse Go bold font: %w", err)
	}
	return &Renderer{regular: regular, bold: bold, cover: cov, writers: newZlibWriters()}, nil
}

// newCoreFontRenderer draws with the PDF core font Helvetica and ASCII only.
// It exists as the baseline of BenchmarkRenderCoreFont.
func newCoreFontRenderer() *Renderer {
	return &Renderer{family: "Helvetica", cover: asciiCoverage(), writers: newZlibWriters()}
}

// Render renders in. Errors (including a panic inside the PDF library) wrap
// ErrRender and are permanent for this input.
func (r *Renderer) Render(in Input) (out Output, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = Output{}, fmt.Errorf("%w: report %s v%d: panic: %v", ErrRender, in.ReportID, in.Version, p)
		}
	}()
	d := r.newDoc(in)
	d.render()
	var buf bytes.Buffer
	if err := d.f.Output(&buf); err != nil {
		return Output{}, fmt.Errorf("%w: report %s v%d: %v", ErrRender, in.ReportID, in.Version, err)
	}
	doc, err := deflatePages(buf.Bytes(), r.writers)
	if err != nil {
		return Output{}, fmt.Errorf("%w: report %s v%d: %v", ErrRender, in.ReportID, in.Version, err)
	}
	return Output{PDF: doc, Pages: d.f.PageCount()}, nil
}

// Layout constants, in millimetres and points.
const (
	margin      = 18.0
	lineH       = 5.0
	smallLineH  = 4.2
	bodySize    = 10.0
	smallSize   = 8.5
	headingSize = 14.0
)

// doc is one document being drawn.
type doc struct {
	f      *fpdf.Fpdf
	in     Input
	rv     *events.ReviewCompleted
	family string
	cov    coverage
	width  float64 // usable width between the margins
	bottom float64 // y at which the page breaks
}

func (r *Renderer) newDoc(in Input) *doc {
	f := fpdf.New("P", "mm", "A4", "")
	// Before the fonts: fpdf sizes the initial UTF-8 subset on whether an alias is set.
	f.AliasNbPages("{nb}")
	family := r.family
	if family == "" {
		family = "go"
		f.AddUTF8FontParsed(family, "", r.regular)
		f.AddUTF8FontParsed(family, "B", r.bold)
	}
	d := &doc{f: f, in: in, rv: &in.Review, family: family, cov: r.cover}
	created := in.GeneratedAt.UTC()
	if created.IsZero() {
		created = in.Review.CompletedAt.UTC()
	}
	if created.IsZero() { // fpdf would write the time of rendering
		created = time.Unix(0, 0).UTC()
	}
	f.SetCreationDate(created)
	f.SetModificationDate(created)
	f.SetCatalogSort(true)
	f.SetCompression(false) // deflatePages compresses the pages afterwards
	f.SetProducer(Producer, true)
	f.SetCreator("afteraction", true)
	f.SetTitle(d.line("Incident report: "+in.Review.Incident.Title), true)
	f.SetSubject(d.line(fmt.Sprintf("Report %s version %d", in.ReportID, in.Version)), true)
	f.SetMargins(margin, margin+6, margin)
	f.SetAutoPageBreak(true, margin+4)
	pw, ph := f.GetPageSize()
	d.width = pw - 2*margin
	d.bottom = ph - (margin + 4)
	f.SetHeaderFunc(d.header)
	f.SetFooterFunc(d.footer)
	return d
}

// line and text sanitise for single-line and multi-line drawing.
func (d *doc) line(s string) string { return d.cov.clean(s, false) }
func (d *doc) text(s string) string { return d.cov.clean(s, true) }

func (d *doc) font(style string, size float64) { d.f.SetFont(d.family, style, size) }

func (d *doc) header() {
	f := d.f
	d.font("", 7.5)
	f.SetTextColor(110, 110, 110)
	left := d.fit("Post-incident report · "+d.rv.Incident.Source+" "+d.rv.Incident.ExternalID, d.width*0.5)
	right := d.fit(fmt.Sprintf("Report %s · v%d", d.in.ReportID, d.in.Version), d.width*0.5)
	f.SetXY(margin, 10)
	f.CellFormat(d.width*0.5, 4, left, "", 0, "L", false, 0, "")
	f.CellFormat(d.width*0.5, 4, right, "", 0, "R", false, 0, "")
	f.SetDrawColor(180, 180, 180)
	f.Line(margin, 15, margin+d.width, 15)
	if d.in.Redacted {
		d.font("B", 9)
		f.SetTextColor(180, 20, 20)
		f.SetXY(margin, 5)
		f.CellFormat(d.width, 4, "REDACTED", "", 0, "C", false, 0, "")
	}
	f.SetTextColor(0, 0, 0)
	f.SetXY(margin, margin+6)
}

func (d *doc) footer() {
	f := d.f
	_, ph := f.GetPageSize()
	f.SetY(ph - 13)
	d.font("", 7.5)
	f.SetTextColor(110, 110, 110)
	f.CellFormat(d.width/2, 4, d.line("Generated "+fmtTime(d.in.GeneratedAt)+" by afteraction"), "", 0, "L", false, 0, "")
	f.CellFormat(d.width/2, 4, fmt.Sprintf("Page %d of {nb}", f.PageNo()), "", 0, "R", false, 0, "")
	f.SetTextColor(0, 0, 0)
}

// fit sanitises s for one line and shortens it with an ellipsis until it fits
// width at the current font. Only header lines use it; the full value is
// printed in the body.
func (d *doc) fit(s string, width float64) string {
	s = d.line(s)
	if d.f.GetStringWidth(s) <= width-2 {
		return s
	}
	rs := []rune(s)
	lo, hi := 0, len(rs)
	for lo < hi { // longest prefix that fits with the ellipsis
		mid := (lo + hi + 1) / 2
		if d.f.GetStringWidth(string(rs[:mid])+"…") <= width-2 {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return string(rs[:lo]) + "…"
}

// ensure starts a new page unless h millimetres are left on this one.
func (d *doc) ensure(h float64) {
	if d.f.GetY()+h > d.bottom {
		d.f.AddPage()
	}
}

// Keep-with-next heights (mm): a heading or subheading starts a new page
// unless what follows it can start on this one too, so a heading is never the
// last line of a page. firstBlock is a table's header row and two lines (the
// most that ever needs to stay together after a title).
const (
	firstBlock    = smallLineH + 1.6 + 2*smallLineH + 1.2
	subheadingH   = 1.5 + 6
	headingH      = 3 + 7 + 2.5
	keepSubheader = subheadingH + firstBlock + 1
)

func (d *doc) heading(title string) { d.headingBefore(title, keepSubheader) }

// headingBefore draws a heading that must stay on one page with the next
// millimetres of what follows it.
func (d *doc) headingBefore(title string, next float64) {
	d.ensure(headingH + next)
	f := d.f
	f.Ln(3)
	d.font("B", headingSize)
	f.SetTextColor(20, 50, 100)
	f.MultiCell(0, 7, d.line(title), "", "L", false)
	f.SetDrawColor(20, 50, 100)
	f.Line(margin, f.GetY()+0.5, margin+d.width, f.GetY()+0.5)
	f.SetTextColor(0, 0, 0)
	f.Ln(2.5)
}

func (d *doc) subheading(title string) { d.subheadingBefore(title, firstBlock+1) }

// subheadingBefore draws a subheading that must stay on one page with the
// next millimetres of what follows it.
func (d *doc) subheadingBefore(title string, next float64) {
	d.ensure(subheadingH + next)
	d.f.Ln(1.5)
	d.font("B", 11)
	d.f.MultiCell(0, 6, d.line(title), "", "L", false)
}

// para draws a wrapped paragraph; empty text draws nothing.
func (d *doc) para(s string) {
	s = d.text(s)
	if s == "" {
		return
	}
	d.font("", bodySize)
	d.f.MultiCell(0, lineH, s, "", "L", false)
	d.f.Ln(1)
}

// note draws a muted line such as "No answers were recorded."
func (d *doc) note(s string) {
	d.font("", bodySize)
	d.f.SetTextColor(100, 100, 100)
	d.f.MultiCell(0, lineH, d.text(s), "", "L", false)
	d.f.SetTextColor(0, 0, 0)
	d.f.Ln(1)
}

// labelled draws "label: text" with the label in bold, wrapping like a paragraph.
func (d *doc) labelled(label, s string) {
	d.f.SetX(margin)
	d.font("B", bodySize)
	d.f.Write(lineH, d.line(label)+": ")
	d.font("", bodySize)
	d.f.Write(lineH, d.text(orDash(s)))
	d.f.Ln(lineH + 0.5)
}

// bullets draws a bulleted list.
func (d *doc) bullets(items []string) {
	d.font("", bodySize)
	for _, it := range items {
		d.f.SetX(margin + 2)
		d.f.CellFormat(4, lineH, d.line("•"), "", 0, "L", false, 0, "")
		d.f.MultiCell(d.width-6, lineH, d.text(it), "", "L", false)
	}
	d.f.Ln(1)
}

// kv draws a two-column key/value table without header.
func (d *doc) kv(rows [][2]string) {
	cells := make([][]string, len(rows))
	for i, r := range rows {
		cells[i] = []string{r[0], r[1]}
	}
	d.grid([]column{{"", 50}, {"", d.width - 50}}, cells, false)
}

// column is one column of a table; widths are in millimetres.
type column struct {
	title string
	width float64
}

// table draws a table with a header row that repeats on every page it spans.
func (d *doc) table(cols []column, rows [][]string) {
	d.grid(cols, rows, true)
}

// grid draws rows of wrapped cells. A row that does not fit the rest of the
// page continues on the next one; a row taller than a page is split across
// pages, so nothing is cut off.
func (d *doc) grid(cols []column, rows [][]string, header bool) {
	f := d.f
	const lh = smallLineH
	drawHeader := func() {
		if !header {
			return
		}
		d.font("B", smallSize)
		f.SetFillColor(225, 230, 240)
		x, y := margin, f.GetY()
		for _, c := range cols {
			f.SetXY(x, y)
			f.CellFormat(c.width, lh+1.6, d.line(c.title), "1", 0, "L", true, 0, "")
			x += c.width
		}
		f.SetXY(margin, y+lh+1.6)
	}
	f.SetX(margin)
	d.ensure(firstBlock)
	drawHeader()
	for _, row := range rows {
		lines := make([][]string, len(cols))
		for i, c := range cols {
			cell := ""
			if i < len(row) {
				cell = row[i]
			}
			d.font(cellStyle(header, i), smallSize)
			lines[i] = d.wrap(d.text(cell), c.width)
		}
		for {
			left := 0
			for _, l := range lines {
				left = max(left, len(l))
			}
			if left == 0 {
				break
			}
			fit := int((d.bottom - f.GetY() - 1.2) / lh)
			if fit < min(left, 2) {
				f.AddPage()
				drawHeader()
				continue
			}
			n := min(fit, left)
			x, y := margin, f.GetY()
			h := float64(n)*lh + 1.2
			for i, c := range cols {
				f.Rect(x, y, c.width, h, "D")
				d.font(cellStyle(header, i), smallSize)
				take := min(n, len(lines[i]))
				for k := 0; k < take; k++ {
					f.SetXY(x, y+0.6+float64(k)*lh)
					f.CellFormat(c.width, lh, lines[i][k], "", 0, "L", false, 0, "")
				}
				lines[i] = lines[i][take:]
				x += c.width
			}
			f.SetXY(margin, y+h)
		}
	}
	f.Ln(2)
	d.font("", bodySize)
}

// cellStyle makes the first column of a key/value grid bold.
func cellStyle(header bool, col int) string {
	if !header && col == 0 {
		return "B"
	}
	return ""
}
