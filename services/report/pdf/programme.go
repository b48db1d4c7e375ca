package pdf

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
)

// ProgrammeReport is the programme report of one period (NIST SP 800-61
// §3.4.2): key figures, charts over the months before it and tables. The
// caller composes the words and figures; this package only lays them out.
type ProgrammeReport struct {
	Title, Subtitle string
	// Intro is the paragraph under the title.
	Intro    string
	ReportID string
	Version  int
	// DataSHA256 is the hex SHA-256 of the canonical figures, printed in
	// the integrity block.
	DataSHA256  string
	GeneratedAt time.Time
	// CertSubject and CertSHA256 name the certificate that will sign the PDF.
	CertSubject, CertSHA256 string
	// Summary is a key/value table under the introduction.
	Summary [][2]string
	Charts  []Chart
	// Sections follow the charts, each a heading, a paragraph and a table.
	Sections []Section
}

// ChartKind is how a chart draws its series.
type ChartKind int

// Chart kinds.
const (
	// StackedBars stacks the series' values of one label in one bar.
	StackedBars ChartKind = iota
	// Lines draws each series as a line through its values; NaN is a gap.
	Lines
)

// Chart is a bar or line chart of labelled values (one value per label per series).
type Chart struct {
	Title, Note string
	Kind        ChartKind
	// Unit names the y axis ("incidents", "hours").
	Unit string
	// Counts makes the y axis step in whole numbers.
	Counts bool
	Labels []string
	Series []ChartSeries
}

// ChartSeries is one named row of values of a chart.
type ChartSeries struct {
	Name   string
	Values []float64
}

// Section is a heading, an introduction and a table (Empty is shown
// instead of a table without rows). Widths are relative column widths.
type Section struct {
	Heading, Intro string
	Columns        []string
	Widths         []float64
	Rows           [][]string
	Empty          string
}

// HeadingProgrammeIntegrity titles the programme report's integrity block.
const HeadingProgrammeIntegrity = "Document integrity"

// RenderProgramme renders p. Errors (a panic inside the PDF library
// included) wrap ErrRender.
func (r *Renderer) RenderProgramme(p ProgrammeReport) (out Output, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			out, err = Output{}, fmt.Errorf("%w: programme report %s: panic: %v", ErrRender, p.ReportID, rec)
		}
	}()
	d := r.newDoc(Input{GeneratedAt: p.GeneratedAt})
	d.f.SetTitle(d.line(p.Title), true)
	d.f.SetSubject(d.line(fmt.Sprintf("Programme report %s version %d", p.ReportID, p.Version)), true)
	d.f.SetHeaderFunc(func() {
		d.font("", 7.5)
		d.f.SetTextColor(110, 110, 110)
		d.f.SetXY(margin, 10)
		d.f.CellFormat(d.width*0.5, 4, d.fit(p.Title, d.width*0.5), "", 0, "L", false, 0, "")
		d.f.CellFormat(d.width*0.5, 4, d.fit(fmt.Sprintf("Programme report %s · v%d", p.ReportID, p.Version), d.width*0.5),
			"", 0, "R", false, 0, "")
		d.f.SetDrawColor(180, 180, 180)
		d.f.Line(margin, 15, margin+d.width, 15)
		d.f.SetTextColor(0, 0, 0)
		d.f.SetXY(margin, margin+6)
	})
	d.f.AddPage()
	d.font("B", 20)
	d.f.SetTextColor(20, 50, 100)
	d.f.MultiCell(0, 9, d.line(p.Title), "", "L", false)
	d.font("", 12)
	d.f.MultiCell(0, 6, d.line(p.Subtitle), "", "L", false)
	d.f.SetTextColor(0, 0, 0)
	d.f.Ln(3)
	d.para(p.Intro)
	if len(p.Summary) > 0 {
		d.kv(p.Summary)
	}
	for _, c := range p.Charts {
		d.chart(c)
	}
	for _, s := range p.Sections {
		d.heading(s.Heading)
		d.para(s.Intro)
		if len(s.Rows) == 0 {
			d.note(s.Empty)
			continue
		}
		d.table(d.columns(s.Columns, s.Widths), s.Rows)
	}
	d.heading(HeadingProgrammeIntegrity)
	rows := [][2]string{{"Programme report id", p.ReportID}, {"Version", strconv.Itoa(p.Version)},
		{"Generated", fmtTime(p.GeneratedAt)}, {"Data SHA-256", p.DataSHA256}}
	if p.CertSHA256 != "" {
		rows = append(rows, [2]string{"Signed by", p.CertSubject}, [2]string{"Certificate SHA-256", p.CertSHA256})
	}
	d.kv(rows)
	d.para("The data SHA-256 is the digest of the canonical JSON of the figures this report was rendered from. " +
		"This file carries a digital signature (PDF signature with a CMS SignedData over every byte of the file " +
		"but the signature itself) made with the certificate named above: any PDF reader, Poppler's pdfsig, or " +
		"`afteraction verify --cert <certificate.pem> <file.pdf>` checks it offline; one changed byte breaks it.")
	var buf bytes.Buffer
	if err := d.f.Output(&buf); err != nil {
		return Output{}, fmt.Errorf("%w: programme report %s: %v", ErrRender, p.ReportID, err)
	}
	doc, err := deflatePages(buf.Bytes(), r.writers)
	if err != nil {
		return Output{}, fmt.Errorf("%w: programme report %s: %v", ErrRender, p.ReportID, err)
	}
	return Output{PDF: doc, Pages: d.f.PageCount()}, nil
}

// columns spreads the page width over titles by relative widths (equal
// when widths does not match).
func (d *doc) columns(titles []string, widths []float64) []column {
	if len(widths) != len(titles) {
		widths = make([]float64, len(titles))
		for i := range widths {
			widths[i] = 1
		}
	}
	var sum float64
	for _, w := range widths {
		sum += w
	}
	cols := make([]column, len(titles))
	for i, t := range titles {
		cols[i] = column{t, d.width * widths[i] / sum}
	}
	return cols
}

// chartPalette colours the series of a chart in order.
var chartPalette = [][3]int{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
	{140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}}

// niceStep is the axis step nearest above raw among 1, 2 and 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*exp {
			return m * exp
		}
	}
	return 10 * exp
}

// axisNumber prints an axis or value label without needless decimals.
func axisNumber(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// chart draws c with fpdf primitives: a y axis with grid lines, one slot per
// label, a legend, and c.Note under it.
func (d *doc) chart(c Chart) {
	const plotH, legendRowH = 55.0, 4.5
	perRow := 3
	legendRows := (len(c.Series) + perRow - 1) / perRow
	d.subheadingBefore(c.Title, plotH+14+float64(legendRows)*legendRowH)
	f := d.f
	n := len(c.Labels)
	top := f.GetY() + 3
	plotX := margin + 12
	plotW := d.width - 14
	ymax := 0.0
	for i := range n {
		sum := 0.0
		for _, s := range c.Series {
			v := value(s, i)
			switch {
			case math.IsNaN(v) || v < 0:
			case c.Kind == StackedBars:
				sum += v
			default:
				ymax = math.Max(ymax, v)
			}
		}
		ymax = math.Max(ymax, sum)
	}
	step := niceStep(ymax / 5)
	if ymax == 0 || c.Counts {
		step = math.Max(step, 1)
	}
	top2 := math.Max(step, math.Ceil(ymax/step)*step)
	yOf := func(v float64) float64 { return top + plotH - plotH*v/top2 }
	// grid and y labels
	d.font("", 6.5)
	f.SetTextColor(90, 90, 90)
	f.SetLineWidth(0.1)
	for v := 0.0; v <= top2+step/2; v += step {
		y := yOf(v)
		f.SetDrawColor(220, 220, 220)
		f.Line(plotX, y, plotX+plotW, y)
		label := axisNumber(v)
		f.SetXY(margin, y-1.75)
		f.CellFormat(11, 3.5, label, "", 0, "R", false, 0, "")
	}
	f.SetDrawColor(60, 60, 60)
	f.SetLineWidth(0.3)
	f.Line(plotX, top+plotH, plotX+plotW, top+plotH)
	f.Line(plotX, top, plotX, top+plotH)
	f.SetLineWidth(0.2)
	// the unit above the y axis
	f.SetXY(margin, top-4)
	f.CellFormat(40, 3.5, d.line(c.Unit), "", 0, "L", false, 0, "")
	slot := plotW / float64(max(n, 1))
	every := 1
	d.font("", 6.5)
	for n > 0 && f.GetStringWidth(longest(c.Labels))+1 > slot*float64(every) {
		every++
	}
	for i, l := range c.Labels {
		if i%every != 0 {
			continue
		}
		x := plotX + slot*float64(i)
		f.SetXY(x, top+plotH+1)
		f.CellFormat(slot*float64(every), 3.5, d.line(l), "", 0, "L", false, 0, "")
	}
	switch c.Kind {
	case StackedBars:
		barW := slot * 0.6
		for i := range n {
			x := plotX + slot*float64(i) + (slot-barW)/2
			base := 0.0
			for k, s := range c.Series {
				v := value(s, i)
				if math.IsNaN(v) || v <= 0 {
					continue
				}
				rgb := chartPalette[k%len(chartPalette)]
				f.SetFillColor(rgb[0], rgb[1], rgb[2])
				f.Rect(x, yOf(base+v), barW, yOf(base)-yOf(base+v), "F")
				base += v
			}
			if base > 0 {
				label := axisNumber(base)
				f.SetTextColor(0, 0, 0)
				f.SetXY(x-2, yOf(base)-4)
				f.CellFormat(barW+4, 3.5, label, "", 0, "C", false, 0, "")
			}
		}
	case Lines:
		for k, s := range c.Series {
			rgb := chartPalette[k%len(chartPalette)]
			f.SetDrawColor(rgb[0], rgb[1], rgb[2])
			f.SetFillColor(rgb[0], rgb[1], rgb[2])
			f.SetLineWidth(0.5)
			var px, py float64
			have := false
			for i := range n {
				v := value(s, i)
				if math.IsNaN(v) || v < 0 {
					have = false
					continue
				}
				x, y := plotX+slot*float64(i)+slot/2, yOf(v)
				if have {
					f.Line(px, py, x, y)
				}
				f.Circle(x, y, 0.8, "F")
				px, py, have = x, y, true
			}
		}
		f.SetLineWidth(0.2)
	}
	// legend
	f.SetTextColor(0, 0, 0)
	y := top + plotH + 6
	colW := d.width / float64(perRow)
	for k, s := range c.Series {
		x := margin + colW*float64(k%perRow)
		yy := y + legendRowH*float64(k/perRow)
		rgb := chartPalette[k%len(chartPalette)]
		f.SetFillColor(rgb[0], rgb[1], rgb[2])
		f.Rect(x, yy+0.8, 3, 2.4, "F")
		f.SetXY(x+4, yy)
		f.CellFormat(colW-5, 4, d.fit(s.Name, colW-5), "", 0, "L", false, 0, "")
	}
	f.SetXY(margin, y+float64(legendRows)*legendRowH+1)
	if c.Note != "" {
		d.note(c.Note)
	}
	d.font("", bodySize)
}

// value is s's value at i, NaN when s has none (a gap, or no bar).
func value(s ChartSeries, i int) float64 {
	if i < len(s.Values) {
		return s.Values[i]
	}
	return math.NaN()
}

func longest(ss []string) string {
	var l string
	for _, s := range ss {
		if len(s) > len(l) {
			l = s
		}
	}
	return l
}
