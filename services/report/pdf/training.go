package pdf

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// TrainingCase is one reviewed incident in a training pack.
type TrainingCase struct {
	Title, Severity, Subcategory string
	ClosedAt                     time.Time
	Summary                      string
	// Findings and Lessons hold one item per line.
	Findings, Lessons string
	ReportID          string
	Exercise          bool
}

// TrainingPack is the case library's material for one incident category,
// for new team members (NIST SP 800-61 §3.4.1).
type TrainingPack struct {
	Category    string
	GeneratedAt time.Time
	// Cases are drawn in the order given (the library gives newest first).
	Cases []TrainingCase
}

// RenderTrainingPack renders p: a cover with what the pack holds, then per
// case its summary, findings and the lessons a junior responder should take
// from it. Errors wrap ErrRender.
func (r *Renderer) RenderTrainingPack(p TrainingPack) (out Output, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			out, err = Output{}, fmt.Errorf("%w: training pack %s: panic: %v", ErrRender, p.Category, rec)
		}
	}()
	d := r.newDoc(Input{GeneratedAt: p.GeneratedAt})
	d.f.SetTitle(d.line("Training pack: "+p.Category), true)
	d.f.SetSubject(d.line(fmt.Sprintf("%d reviewed incidents of category %s", len(p.Cases), p.Category)), true)
	d.f.SetHeaderFunc(func() {
		d.font("", 7.5)
		d.f.SetTextColor(110, 110, 110)
		d.f.SetXY(margin, 10)
		d.f.CellFormat(d.width, 4, d.fit("Training pack · "+p.Category, d.width), "", 0, "L", false, 0, "")
		d.f.SetDrawColor(180, 180, 180)
		d.f.Line(margin, 15, margin+d.width, 15)
		d.f.SetTextColor(0, 0, 0)
		d.f.SetXY(margin, margin+6)
	})
	d.f.AddPage()
	d.heading("Training pack: " + p.Category)
	d.para(fmt.Sprintf("The lessons learned from %d reviewed incidents of category %q, newest first: what happened, "+
		"what the review found, and what the people involved would do differently. Read each case, then its "+
		"lessons; the signed report of each is named at its end.", len(p.Cases), p.Category))
	if len(p.Cases) == 0 {
		d.note("No reviewed incident of this category has a published report yet.")
	}
	for i, c := range p.Cases {
		title := fmt.Sprintf("Case %d: %s", i+1, c.Title)
		if c.Exercise {
			title += " (exercise)"
		}
		d.heading(title)
		kind := c.Severity
		if c.Subcategory != "" {
			kind += " · " + c.Subcategory
		}
		d.kv([][2]string{{"Closed", fmtTime(c.ClosedAt)}, {"Severity · subcategory", kind}, {"Report", c.ReportID}})
		d.subheading("What happened")
		if strings.TrimSpace(c.Summary) == "" {
			d.note("The review recorded no summary.")
		} else {
			d.para(c.Summary)
		}
		d.subheading("What the review found")
		d.list(c.Findings, "The review recorded no findings.")
		d.subheading("What a new team member should learn")
		d.list(c.Lessons, "The participants recorded no lessons.")
	}
	var buf bytes.Buffer
	if err := d.f.Output(&buf); err != nil {
		return Output{}, fmt.Errorf("%w: training pack %s: %v", ErrRender, p.Category, err)
	}
	doc, err := deflatePages(buf.Bytes(), r.writers)
	if err != nil {
		return Output{}, fmt.Errorf("%w: training pack %s: %v", ErrRender, p.Category, err)
	}
	return Output{PDF: doc, Pages: d.f.PageCount()}, nil
}

// list draws the non-empty lines of s as bullets, or empty as a note.
func (d *doc) list(s, empty string) {
	var items []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			items = append(items, l)
		}
	}
	if len(items) == 0 {
		d.note(empty)
		return
	}
	d.bullets(items)
}
