package pdf

import (
	"sort"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// span is one bar of the phase chart.
type span struct {
	label      string
	start, end time.Time
	rgb        [3]int
}

// phaseSpans returns the handling phases from the incident's milestones
// (start → detection → containment → eradication → recovery), and, when too
// few milestones are known, the first-to-last activity of each phase in the
// timeline instead.
func phaseSpans(in events.IncidentClosed) []span {
	ts := in.Timestamps
	type milestone struct {
		label string
		from  *time.Time
		to    *time.Time
		rgb   [3]int
	}
	ms := []milestone{
		{"Compromise to detection", ts.StartedAt, ts.DetectedAt, [3]int{200, 80, 70}},
		{"Detection to containment", ts.DetectedAt, ts.ContainedAt, [3]int{230, 150, 50}},
		{"Containment to eradication", ts.ContainedAt, ts.EradicatedAt, [3]int{90, 140, 200}},
		{"Eradication to recovery", ts.EradicatedAt, ts.RecoveredAt, [3]int{80, 160, 100}},
	}
	var out []span
	for _, m := range ms {
		if m.from != nil && m.to != nil && !m.to.Before(*m.from) {
			out = append(out, span{m.label, m.from.UTC(), m.to.UTC(), m.rgb})
		}
	}
	if len(out) >= 2 {
		return out
	}
	out = out[:0]
	order := []events.Phase{events.PhaseDetection, events.PhaseAnalysis, events.PhaseContainment,
		events.PhaseEradication, events.PhaseRecovery}
	colours := [][3]int{{200, 80, 70}, {230, 150, 50}, {90, 140, 200}, {120, 110, 190}, {80, 160, 100}}
	for i, p := range order {
		var first, last time.Time
		for _, e := range in.Timeline {
			if e.Phase != p {
				continue
			}
			if first.IsZero() || e.At.Before(first) {
				first = e.At
			}
			if last.IsZero() || e.At.After(last) {
				last = e.At
			}
		}
		if !first.IsZero() {
			out = append(out, span{"Activity: " + humanize(string(p)), first.UTC(), last.UTC(), colours[i]})
		}
	}
	return out
}

// tickSteps are the candidate distances between axis ticks.
var tickSteps = []time.Duration{
	time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour,
	90 * 24 * time.Hour, 365 * 24 * time.Hour,
}

// phaseChart draws horizontal bars on a time axis with fpdf primitives.
// chartRowH is the height of one phase in the chart (mm).
const chartRowH = 8.0

// phaseChartHeight is the height phaseChart needs on one page.
func phaseChartHeight(spans []span) float64 {
	if len(spans) == 0 {
		return 2 * lineH
	}
	return float64(len(spans))*chartRowH + 16 + 4
}

func (d *doc) phaseChart(spans []span) {
	if len(spans) == 0 {
		d.note("Not enough timestamps are known to chart the handling phases.")
		return
	}
	f := d.f
	t0, t1 := spans[0].start, spans[0].end
	for _, s := range spans {
		if s.start.Before(t0) {
			t0 = s.start
		}
		if s.end.After(t1) {
			t1 = s.end
		}
	}
	total := t1.Sub(t0)
	if total <= 0 {
		total = time.Minute
	}
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if total/s <= 6 {
			step = s
			break
		}
	}
	const labelW, barH, rowH = 48.0, 5.0, chartRowH
	plotX, plotW := margin+labelW, d.width-labelW-2
	height := phaseChartHeight(spans) - 4
	d.ensure(height + 4)
	top := f.GetY() + 2
	xOf := func(t time.Time) float64 {
		return plotX + plotW*float64(t.Sub(t0))/float64(total)
	}
	// grid and axis
	f.SetDrawColor(215, 215, 215)
	f.SetLineWidth(0.1)
	axisY := top + float64(len(spans))*rowH + 2
	d.font("", 6.5)
	f.SetTextColor(90, 90, 90)
	first := t0.Truncate(step)
	if first.Before(t0) {
		first = first.Add(step)
	}
	layout := "Jan 02 15:04"
	if step >= 24*time.Hour {
		layout = "2006-01-02"
	}
	for t := first; !t.After(t1); t = t.Add(step) {
		x := xOf(t)
		f.Line(x, top, x, axisY)
		label := t.Format(layout)
		w := f.GetStringWidth(label)
		f.SetXY(x-w/2-1, axisY+1)
		f.CellFormat(w+2, 3.5, label, "", 0, "C", false, 0, "")
	}
	f.SetDrawColor(60, 60, 60)
	f.SetLineWidth(0.3)
	f.Line(plotX, axisY, plotX+plotW, axisY)
	f.SetLineWidth(0.2)
	// bars
	for i, s := range spans {
		y := top + float64(i)*rowH
		d.font("", 7.5)
		f.SetTextColor(0, 0, 0)
		f.SetXY(margin, y+(rowH-barH)/2-0.5)
		f.CellFormat(labelW, barH, d.line(s.label), "", 0, "L", false, 0, "")
		x0, x1 := xOf(s.start), xOf(s.end)
		w := max(x1-x0, 0.6)
		f.SetFillColor(s.rgb[0], s.rgb[1], s.rgb[2])
		f.Rect(x0, y+(rowH-barH)/2, w, barH, "F")
		label := fmtDuration(s.end.Sub(s.start))
		d.font("", 6.5)
		lw := f.GetStringWidth(label) + 2
		lx := x0 + w + 0.5
		if lx+lw > plotX+plotW {
			lx = x0 - lw - 0.5
		}
		f.SetXY(lx, y+(rowH-barH)/2)
		f.CellFormat(lw, barH, d.line(label), "", 0, "L", false, 0, "")
	}
	f.SetTextColor(0, 0, 0)
	d.font("", 6.5)
	f.SetXY(margin, axisY+5)
	f.CellFormat(d.width, 3.5, "Time axis in UTC", "", 0, "R", false, 0, "")
	f.SetXY(margin, axisY+10)
	d.font("", bodySize)
}

// sortedTimeline returns the timeline in time order (stable for equal times).
func sortedTimeline(tl []events.TimelineEntry) []events.TimelineEntry {
	out := append([]events.TimelineEntry(nil), tl...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}
