package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// RetentionPolicy is how long the evidence of an incident (intake's raw
// payloads, review's answers) is kept after the incident closed, per category
// and severity (NIST SP 800-61 §3.4.3). It is written as rules separated by
// ";", each "<match>=<period>":
//
//	default=3y;category:malware=5y;severity:critical=7y;category:fraud=indefinite
//
// A match is "default" (every incident), "category:<name>" (case-insensitive)
// or "severity:<level>"; a period is a whole number of years (y), months (mo),
// weeks (w) or days (d), or "indefinite". Of the rules that match an incident
// the longest wins: no rule shortens what another keeps. An incident no rule
// matches is kept indefinitely, as is every incident under the empty policy.
type RetentionPolicy struct{ rules []retentionRule }

type retentionRule struct {
	text       string // as written, normalised: "category:malware=5y"
	kind, name string // "default" | "category" | "severity", and the value matched
	years      int
	months     int
	days       int
	indefinite bool
}

// Retention is what the policy says of one incident.
type Retention struct {
	// Rule is the rule that set the period ("" when none matched).
	Rule string `json:"rule,omitempty"`
	// Until is the retention date: closed_at plus the period (zero when the
	// evidence is kept indefinitely).
	Until time.Time `json:"retain_until,omitzero"`
	// Indefinite says no rule limits how long the evidence is kept.
	Indefinite bool `json:"indefinite"`
}

// maxRetentionYears bounds a period, so a typo ("300y") is caught at start-up.
const maxRetentionYears = 100

// ParseRetentionPolicy parses s (see RetentionPolicy). An error names the rule
// at fault, by position and text, and what is wrong with it.
func ParseRetentionPolicy(s string) (RetentionPolicy, error) {
	var p RetentionPolicy
	seen := map[string]bool{}
	for i, raw := range strings.Split(s, ";") {
		text := strings.TrimSpace(raw)
		if text == "" {
			continue
		}
		r, err := parseRetentionRule(text)
		if err != nil {
			return RetentionPolicy{}, fmt.Errorf("rule %d %q: %w", i+1, text, err)
		}
		key := r.kind + ":" + r.name
		if seen[key] {
			return RetentionPolicy{}, fmt.Errorf("rule %d %q: %s is given twice", i+1, text, strings.TrimSuffix(key, ":"))
		}
		seen[key] = true
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func parseRetentionRule(text string) (retentionRule, error) {
	match, period, ok := strings.Cut(text, "=")
	if !ok {
		return retentionRule{}, fmt.Errorf(`want <match>=<period>, e.g. "category:malware=5y"`)
	}
	var r retentionRule
	match, period = strings.ToLower(strings.TrimSpace(match)), strings.ToLower(strings.TrimSpace(period))
	kind, name, _ := strings.Cut(match, ":")
	r.kind, r.name = strings.TrimSpace(kind), strings.TrimSpace(name)
	switch r.kind {
	case "default":
		if r.name != "" {
			return r, fmt.Errorf(`"default" takes no value`)
		}
	case "category":
		if r.name == "" {
			return r, fmt.Errorf(`"category:" needs a category name`)
		}
	case "severity":
		if !events.Severity(r.name).Valid() {
			return r, fmt.Errorf("unknown severity %q: want critical, high, medium, low or informational", r.name)
		}
	default:
		return r, fmt.Errorf("unknown match %q: want default, category:<name> or severity:<level>", match)
	}
	if err := r.parsePeriod(period); err != nil {
		return r, err
	}
	r.text = match + "=" + period
	return r, nil
}

func (r *retentionRule) parsePeriod(period string) error {
	if period == "indefinite" {
		r.indefinite = true
		return nil
	}
	i := strings.IndexFunc(period, func(c rune) bool { return c < '0' || c > '9' })
	if i <= 0 {
		return fmt.Errorf("period %q: want a whole number and a unit (y, mo, w, d), or indefinite", period)
	}
	n, err := strconv.Atoi(period[:i])
	if err != nil || n < 1 {
		return fmt.Errorf("period %q: want a whole number of at least 1", period)
	}
	switch unit := period[i:]; unit {
	case "y":
		r.years = n
	case "mo":
		r.months = n
	case "w":
		r.days = 7 * n
	case "d":
		r.days = n
	case "m":
		return fmt.Errorf("period %q: unit m is ambiguous: write mo for months", period)
	default:
		return fmt.Errorf("period %q: unknown unit %q: want y, mo, w or d", period, unit)
	}
	if r.years*12+r.months+r.days/31 > maxRetentionYears*12 {
		return fmt.Errorf("period %q: longer than %d years; write indefinite to keep for good", period, maxRetentionYears)
	}
	return nil
}

func (r retentionRule) matches(category string, severity events.Severity) bool {
	switch r.kind {
	case "category":
		return strings.EqualFold(strings.TrimSpace(category), r.name)
	case "severity":
		return string(severity) == r.name
	default:
		return true
	}
}

// For returns the retention of an incident of category and severity that
// closed at closedAt: the matching rule whose period ends last.
func (p RetentionPolicy) For(category string, severity events.Severity, closedAt time.Time) Retention {
	var best Retention
	found := false
	for _, r := range p.rules {
		if !r.matches(category, severity) {
			continue
		}
		if r.indefinite {
			return Retention{Rule: r.text, Indefinite: true}
		}
		until := closedAt.UTC().AddDate(r.years, r.months, r.days)
		if !found || until.After(best.Until) {
			best, found = Retention{Rule: r.text, Until: until}, true
		}
	}
	if !found {
		return Retention{Indefinite: true}
	}
	return best
}

// Enabled says whether any rule can ever expire evidence.
func (p RetentionPolicy) Enabled() bool {
	for _, r := range p.rules {
		if !r.indefinite {
			return true
		}
	}
	return false
}

// earliestDue returns a bound on the closing time of every incident whose
// evidence can be due at now under some finite rule (false: none can ever
// be). It errs late by a few days, for month ends: For decides exactly.
func (p RetentionPolicy) earliestDue(now time.Time) (time.Time, bool) {
	var bound time.Time
	found := false
	for _, r := range p.rules {
		if r.indefinite {
			continue
		}
		if b := now.AddDate(-r.years, -r.months, -r.days+4); !found || b.After(bound) {
			bound, found = b, true
		}
	}
	return bound, found
}

// String is the policy in its normalised form, as logged at start-up.
func (p RetentionPolicy) String() string {
	texts := make([]string, len(p.rules))
	for i, r := range p.rules {
		texts[i] = r.text
	}
	return strings.Join(texts, ";")
}
