package pdf

import (
	"strconv"
	"strings"
)

// meeting prints the debrief (lessons-learned) meeting, when the review had
// one: when, where, who attended and the minutes (review.completed's meeting).
func (d *doc) meeting() {
	m := d.rv.Meeting
	if m == nil {
		return
	}
	d.subheading("Lessons-learned meeting")
	d.labelled("When", fmtTime(m.StartsAt)+" ("+strconv.Itoa(m.DurationMinutes)+" minutes)")
	if m.Location != "" {
		d.labelled("Where", m.Location)
	}
	if len(m.Attended) > 0 {
		d.labelled("Attended", strings.Join(m.Attended, ", "))
	}
	if m.Minutes != "" {
		d.labelled("Minutes", m.Minutes)
	}
}
