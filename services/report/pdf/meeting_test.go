package pdf

import (
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

func TestReportShowsTheDebriefMeeting(t *testing.T) {
	t.Parallel()
	in := exampleInput(t)
	in.Review.Meeting = &events.Meeting{StartsAt: time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC), DurationMinutes: 45,
		Location: "Room 4.12, Hamburg", Attended: []string{"Jonas Berg", "Zoë Ågren"}, Minutes: "Agreed on number matching for MFA."}
	out, err := renderer(t).Render(in)
	if err != nil {
		t.Fatal(err)
	}
	ft := flat(pdfText(t, out.PDF))
	for _, w := range []string{"Lessons-learned meeting", "45 minutes", "Room 4.12, Hamburg", "Jonas Berg, Zoë Ågren", "Agreed on number matching for MFA."} {
		if !strings.Contains(ft, w) {
			t.Errorf("pdftotext output lacks %q", w)
		}
	}
}
