package pdf

import (
	"slices"
	"strings"
	"testing"
)

// TestHeadingIsNeverTheLastLineOfAPage shifts the layout line by line (a
// summary one sentence longer each time) so that every heading and
// subheading lands near a page end in some rendering, and checks that none
// is ever the last line of its page.
func TestHeadingIsNeverTheLastLineOfAPage(t *testing.T) {
	t.Parallel()
	titles := append(slices.Clone(Headings), "The incident", "Key figures", "Key findings", "Handling phases",
		"Timeline", "Labour", "Findings", "Notifications", "Containment, eradication and recovery actions",
		"Indicators of compromise", "Related action items", "Initial and final assessment", "Affected assets",
		"Review participants who answered", "People involved in the incident")
	for n := range 24 {
		in := exampleInput(t)
		in.Review.Summary += strings.Repeat(" This sentence moves everything after it down by part of a line.", n)
		out, err := renderer(t).Render(in)
		if err != nil {
			t.Fatal(err)
		}
		pages := strings.Split(pdfText(t, out.PDF), "\f")
		for p, page := range pages {
			last := lastContentLine(page)
			if slices.Contains(titles, last) {
				t.Errorf("%d extra sentences: page %d of %d ends with the heading %q", n, p+1, len(pages), last)
			}
		}
	}
}

// lastContentLine is the last line of a page's text that is not its header or footer.
func lastContentLine(page string) string {
	lines := strings.Split(page, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "", strings.HasPrefix(l, "Generated "), strings.HasPrefix(l, "Page "),
			strings.HasPrefix(l, "Post-incident report"), strings.HasPrefix(l, "Report "):
			continue
		}
		return l
	}
	return ""
}
