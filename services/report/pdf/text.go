package pdf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/image/font/sfnt"
)

// coverage says which runes of the Basic Multilingual Plane every embedded
// face can draw. It is computed once per Renderer from the fonts' cmaps and is
// read-only afterwards, so concurrent renders share it without locks.
type coverage struct {
	bmp []bool // indexed by rune, len 0x10000
}

// newCoverage returns the runes all of faces have a glyph for.
func newCoverage(faces ...[]byte) (coverage, error) {
	c := coverage{bmp: make([]bool, 0x10000)}
	for i := range c.bmp {
		c.bmp[i] = true
	}
	var buf sfnt.Buffer
	for n, face := range faces {
		f, err := sfnt.Parse(face)
		if err != nil {
			return coverage{}, fmt.Errorf("parse font %d: %w", n, err)
		}
		for r := range c.bmp {
			if !c.bmp[r] {
				continue
			}
			gi, err := f.GlyphIndex(&buf, rune(r))
			c.bmp[r] = err == nil && gi != 0
		}
	}
	return c, nil
}

// asciiCoverage is the coverage of the PDF core fonts as used here: printable ASCII.
func asciiCoverage() coverage {
	c := coverage{bmp: make([]bool, 0x10000)}
	for r := 0x20; r < 0x7f; r++ {
		c.bmp[r] = true
	}
	return c
}

func (c coverage) has(r rune) bool {
	return r >= 0 && r < rune(len(c.bmp)) && c.bmp[r]
}

// clean returns s made safe to draw: invalid UTF-8 becomes U+FFFD first;
// control, format (bidi marks, zero-width joiners, BOM) and variation-selector
// characters are removed; tabs become spaces; newlines are kept when multiline
// is true and become spaces otherwise; every other rune the fonts lack is
// replaced visibly by "[U+XXXX]" (or "?" when the coverage cannot draw that).
// Nothing is dropped silently except invisible characters.
func (c coverage) clean(s string, multiline bool) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case r == '\n':
			if multiline {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		case r == '\r':
			// \r\n and lone \r: the \n (if any) carries the break
			if !strings.HasPrefix(s, "\n") {
				if multiline {
					b.WriteByte('\n')
				} else {
					b.WriteByte(' ')
				}
			}
		case r == '\t':
			b.WriteString("    ")
		case unicode.Is(unicode.Cc, r), unicode.Is(unicode.Cf, r), unicode.Is(unicode.Variation_Selector, r):
			// invisible: removing them changes nothing a reader can see
		case c.has(r):
			b.WriteRune(r)
		default:
			b.WriteString(c.replacement(r))
		}
	}
	return b.String()
}

func (c coverage) replacement(r rune) string {
	code := fmt.Sprintf("[U+%04X]", r)
	for _, x := range code {
		if !c.has(x) {
			return "?"
		}
	}
	return code
}

// Formatting of values shown in the report. Times are shown in UTC so that the
// same data renders the same bytes wherever the service runs.

const timeLayout = "2006-01-02 15:04 UTC"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format(timeLayout)
}

// cellTime is fmtTime for table columns whose heading already says UTC.
func cellTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func cellTimePtr(t *time.Time) string {
	if t == nil {
		return "–"
	}
	return cellTime(*t)
}

// fmtDuration renders d as "2 h 33 min", "1 d 0 h 13 min" or "45 s".
func fmtDuration(d time.Duration) string {
	neg := ""
	if d < 0 {
		neg, d = "−", -d
	}
	if d < time.Minute {
		return neg + strconv.Itoa(int(d/time.Second)) + " s"
	}
	mins := int64(d / time.Minute)
	days, hours, m := mins/(24*60), (mins/60)%24, mins%60
	switch {
	case days > 0:
		return fmt.Sprintf("%s%d d %d h %d min", neg, days, hours, m)
	case hours > 0:
		return fmt.Sprintf("%s%d h %d min", neg, hours, m)
	default:
		return fmt.Sprintf("%s%d min", neg, m)
	}
}

func fmtHours(h float64) string {
	if math.IsNaN(h) || math.IsInf(h, 0) {
		return "–"
	}
	return strconv.FormatFloat(math.Round(h*100)/100, 'f', -1, 64) + " h"
}

// humanize turns an enum value such as "business_owner" into "business owner".
func humanize(s string) string {
	return strings.ReplaceAll(s, "_", " ")
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "–"
	}
	return s
}
