package report

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/afteraction/afteraction/pkg/events"
)

// Built-in redaction rules, by the name REPORT_REDACT_RULES uses.
const (
	RedactNames  = "names"
	RedactEmails = "emails"
	RedactIPs    = "ips"
	RedactHosts  = "hosts"
)

// DefaultRedactRules are applied when REPORT_REDACT_RULES is not set.
var DefaultRedactRules = []string{RedactNames, RedactEmails, RedactIPs, RedactHosts}

var (
	emailRE = regexp.MustCompile(`(?i)[a-z0-9._%+'-]+@(?:[a-z0-9-]+\.)+[a-z]{2,}`)
	ipv4RE  = regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b`)
	ipv6RE  = regexp.MustCompile(`(?i)\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b`)
	hostRE  = regexp.MustCompile(`(?i)\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]\b`)
)

// Redactor masks personal and infrastructure data in a completed review for
// the redacted rendition: people's names (everyone the review names with an
// e-mail address: participants, facilitator, people, labour, owners) become
// "[person N]", consistently across the document, e-mail addresses "[e-mail]",
// IP addresses "[ip]", host names "[host]", and every match of the extra
// patterns "[redacted]". Identifiers, times and enumerations are kept.
type Redactor struct {
	rules map[string]bool
	extra []*regexp.Regexp
}

// NewRedactor returns a redactor applying rules (names of the built-in rules)
// and extra patterns. It fails on an unknown rule or a pattern that does not
// compile, naming it.
func NewRedactor(rules []string, extra []string) (*Redactor, error) {
	r := &Redactor{rules: map[string]bool{}}
	for _, name := range rules {
		if !slices.Contains(DefaultRedactRules, name) {
			return nil, fmt.Errorf("redaction rule %q: want one of %s", name, strings.Join(DefaultRedactRules, ", "))
		}
		r.rules[name] = true
	}
	for i, p := range extra {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redaction pattern %d: %w", i+1, err)
		}
		r.extra = append(r.extra, re)
	}
	return r, nil
}

// keptKeys are the fields never rewritten: identifiers, times, enumerations.
var keptKeys = map[string]bool{"review_id": true, "incident_id": true, "participant_id": true, "question_id": true,
	"id": true, "key": true, "severity": true, "category": true, "subcategory": true, "kind": true, "role": true,
	"phase": true, "level": true, "priority": true, "status": true, "topic": true, "source": true, "currency": true,
	"amount": true, "due_date": true, "questionnaire_version": true, "type": true, "audience": true}

// Redact returns a copy of rc with the rules applied.
func (r *Redactor) Redact(rc events.ReviewCompleted) (events.ReviewCompleted, error) {
	raw, err := json.Marshal(rc)
	if err != nil {
		return rc, fmt.Errorf("redact: %w", err)
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return rc, fmt.Errorf("redact: %w", err)
	}
	names := map[string]int{}
	if r.rules[RedactNames] {
		collectNames(tree, names)
	}
	tree = r.walk(tree, "", nameReplacer(names))
	out, err := json.Marshal(tree)
	if err != nil {
		return rc, fmt.Errorf("redact: %w", err)
	}
	var red events.ReviewCompleted
	if err := json.Unmarshal(out, &red); err != nil {
		return rc, fmt.Errorf("redact: %w", err)
	}
	return red, nil
}

// collectNames numbers the names of every object that has an e-mail address,
// in document order.
func collectNames(v any, names map[string]int) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["email"]; ok {
			for _, k := range []string{"name", "person"} {
				if s, ok := x[k].(string); ok && strings.TrimSpace(s) != "" {
					if _, seen := names[s]; !seen {
						names[s] = len(names) + 1
					}
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			collectNames(x[k], names)
		}
	case []any:
		for _, e := range x {
			collectNames(e, names)
		}
	}
}

// nameReplacer replaces full names, then their parts of four letters or more
// (a first name or surname on its own), longest first.
func nameReplacer(names map[string]int) *strings.Replacer {
	type pair struct {
		from string
		n    int
	}
	var pairs []pair
	for name, n := range names {
		pairs = append(pairs, pair{name, n})
		for part := range strings.FieldsSeq(name) {
			if len([]rune(part)) >= 4 && !strings.HasSuffix(part, ".") {
				pairs = append(pairs, pair{part, n})
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if len(pairs[i].from) != len(pairs[j].from) {
			return len(pairs[i].from) > len(pairs[j].from)
		}
		return pairs[i].from < pairs[j].from
	})
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p.from, "[person "+strconv.Itoa(p.n)+"]")
	}
	return strings.NewReplacer(args...)
}

func (r *Redactor) walk(v any, key string, names *strings.Replacer) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = r.walk(e, k, names)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = r.walk(e, key, names)
		}
		return x
	case string:
		if keptKeys[key] || strings.HasSuffix(key, "_at") || key == "at" {
			return x
		}
		return r.redactText(x, names)
	default:
		return v
	}
}

func (r *Redactor) redactText(s string, names *strings.Replacer) string {
	if r.rules[RedactEmails] {
		s = emailRE.ReplaceAllString(s, "[e-mail]")
	}
	if r.rules[RedactIPs] {
		s = ipv4RE.ReplaceAllString(s, "[ip]")
		s = ipv6RE.ReplaceAllStringFunc(s, func(m string) string {
			if ip := net.ParseIP(m); ip != nil && strings.Count(m, ":") >= 2 {
				return "[ip]"
			}
			return m
		})
	}
	if r.rules[RedactHosts] {
		s = hostRE.ReplaceAllString(s, "[host]")
	}
	if r.rules[RedactNames] {
		s = names.Replace(s)
	}
	for _, re := range r.extra {
		s = re.ReplaceAllString(s, "[redacted]")
	}
	return s
}
