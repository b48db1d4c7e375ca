package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// timeShape says how a timestamp was written, so a normalizer can say in the
// incident's notes what it assumed.
type timeShape int

const (
	shapeZoned    timeShape = iota // an offset or Z was given
	shapeNoZone                    // date and time without a zone: interpreted in the source's zone
	shapeDateOnly                  // a date alone: midnight in the source's zone
	shapeEpoch                     // a number of seconds, ms, µs or ns since 1970 (by magnitude)
)

// errNoTime means the field is absent, null, empty or the integer 0 (which
// vendors send for "unset").
var errNoTime = errors.New("no time given")

// Earliest and latest times accepted: anything before 1980 is an unset value
// or a duration encoded as a date ("1970-01-01 02:30:00"), and RFC 3339 has
// four-digit years.
var (
	minTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// Layouts with a zone. Go accepts fractional seconds after the seconds field
// even when the layout has none. Z0700 covers Jira's "-0800"; Z07 "+08".
var zonedLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05Z07",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z0700",
	"2006-01-02 15:04:05 Z07:00",
	"2006-01-02 15:04:05 Z0700",
	"2006-01-02T15:04Z07:00",
	time.RFC1123Z,
	time.RFC1123,
}

var zonelessLayouts = []string{
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
}

// parseTime reads a timestamp in any of the shapes vendors send: RFC 3339
// (with or without a colon in the offset), date and time without a zone
// (interpreted in loc), a date alone (midnight in loc), or an epoch number
// (as a JSON number or a string) whose unit — s, ms, µs or ns — is told by
// its magnitude. Epoch values are parsed as exact integers, never through
// float64. The result is in UTC. It returns errNoTime for an absent, null,
// empty or zero value, and a descriptive error for anything else it cannot read.
func parseTime(v value, loc *time.Location) (time.Time, timeShape, error) {
	if loc == nil {
		loc = time.UTC
	}
	var s string
	switch x := v.v.(type) {
	case nil:
		return time.Time{}, 0, errNoTime
	case string:
		s = strings.TrimSpace(x)
	case json.Number:
		s = x.String()
	default:
		return time.Time{}, 0, fmt.Errorf("expected a timestamp, got %s", v.kind())
	}
	if s == "" {
		return time.Time{}, 0, errNoTime
	}
	t, shape, err := parseTimeString(s, loc)
	if err != nil {
		return time.Time{}, 0, err
	}
	t = t.UTC()
	if t.Before(minTime) || t.After(maxTime) {
		if shape == shapeEpoch && t.Equal(time.Unix(0, 0)) {
			return time.Time{}, 0, errNoTime
		}
		return time.Time{}, 0, fmt.Errorf("%q is outside 1980–9999 (an unset value, or a duration encoded as a date?)", clip(s, 40))
	}
	return t, shape, nil
}

func parseTimeString(s string, loc *time.Location) (time.Time, timeShape, error) {
	if isEpoch(s) {
		t, err := parseEpoch(s)
		return t, shapeEpoch, err
	}
	for _, layout := range zonedLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, shapeZoned, nil
		}
	}
	for _, layout := range zonelessLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, shapeNoZone, nil
		}
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t, shapeDateOnly, nil
	}
	return time.Time{}, 0, fmt.Errorf("%q is not a timestamp this source sends (RFC 3339, YYYY-MM-DD HH:MM:SS, a date, or epoch s/ms/µs/ns)", clip(s, 40))
}

// isEpoch reports whether s is digits with at most one decimal point.
func isEpoch(s string) bool {
	if s == "" {
		return false
	}
	dot := false
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return true
}

// parseEpoch reads a non-negative epoch value exactly. The unit comes from the
// integer part's magnitude: below 1e11 seconds (until year 5138), below 1e14
// milliseconds, below 1e17 microseconds, otherwise nanoseconds.
func parseEpoch(s string) (time.Time, error) {
	intPart, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is too large for an epoch time", clip(s, 40))
	}
	var unit int64 // nanoseconds per unit
	switch {
	case n < 1e11:
		unit = int64(time.Second)
	case n < 1e14:
		unit = int64(time.Millisecond)
	case n < 1e17:
		unit = int64(time.Microsecond)
	default:
		unit = 1
	}
	sec, rem := n/(int64(time.Second)/unit), n%(int64(time.Second)/unit)
	nsec := rem * unit
	if frac != "" && unit > 1 {
		// Fractional units, exactly: up to nine digits, scaled to the unit.
		if len(frac) > 9 {
			frac = frac[:9]
		}
		f, _ := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64) // f nanounits ×1e-9
		nsec += f * unit / int64(time.Second)
	}
	return time.Unix(sec, nsec), nil
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
