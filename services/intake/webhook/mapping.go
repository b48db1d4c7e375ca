package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
)

// normalization is the state of mapping one payload: the incident being built,
// the notes on what was assumed, and the problems that make it unusable. The
// helpers here are shared by every normalizer; a normalizer only knows where
// its vendor keeps each field.
type normalization struct {
	source     string
	cfg        SourceConfig
	header     http.Header
	root       value
	receivedAt time.Time
	inc        events.IncidentClosed
	problems   []httpapi.FieldError
	zoneNoted  bool
	titlePtr   string
}

// note records a fallback or assumption in the incident's Notes.
func (n *normalization) note(format string, args ...any) {
	n.inc.Notes = append(n.inc.Notes, fmt.Sprintf(format, args...))
}

// fail records that field v makes the event unusable (a 422).
func (n *normalization) fail(v value, reason string) {
	n.problems = append(n.problems, httpapi.FieldError{Field: v.ptr, Reason: reason})
}

// text returns v as text; when required and v is empty it records a problem.
func (n *normalization) text(v value, required bool) string {
	s := v.str()
	if s == "" && required {
		n.fail(v, "required; got "+v.kind())
	}
	return s
}

// title sets the incident's title from v, which must be present.
func (n *normalization) title(v value) {
	n.titlePtr = v.ptr
	n.inc.Title = n.text(v, true)
}

// externalID sets the incident's id from v, which must be present and at most
// 200 characters (an id is never truncated: it is the incident's identity).
func (n *normalization) externalID(id string, v value) {
	switch {
	case id == "":
		n.fail(v, "required: the incident's id in "+n.source+"; got "+v.kind())
	case len([]rune(id)) > 200:
		n.fail(v, "longer than 200 characters")
	default:
		n.inc.ExternalID = id
	}
}

// time parses an optional timestamp; one it cannot read is left out, with a note.
func (n *normalization) time(v value) *time.Time {
	t, shape, err := parseTime(v, n.cfg.Location)
	if err != nil {
		if !errors.Is(err, errNoTime) {
			n.note("%s ignored: %v", v.ptr, err)
		}
		return nil
	}
	n.noteShape(v, shape)
	return &t
}

// requiredTime parses a timestamp a closing event relies on: absent gives
// nil (the caller falls back), unreadable is a problem.
func (n *normalization) requiredTime(v value) *time.Time {
	t, shape, err := parseTime(v, n.cfg.Location)
	if err != nil {
		if !errors.Is(err, errNoTime) {
			n.fail(v, err.Error())
		}
		return nil
	}
	n.noteShape(v, shape)
	return &t
}

// utcTime parses a timestamp known to be UTC when it carries no zone
// (ServiceNow's "value" form).
func (n *normalization) utcTime(v value, required bool) *time.Time {
	loc, noted := n.cfg.Location, n.zoneNoted
	n.cfg.Location, n.zoneNoted = time.UTC, true
	defer func() { n.cfg.Location, n.zoneNoted = loc, noted }()
	if required {
		return n.requiredTime(v)
	}
	return n.time(v)
}

func (n *normalization) noteShape(v value, shape timeShape) {
	switch shape {
	case shapeNoZone:
		if !n.zoneNoted {
			n.zoneNoted = true
			n.note("times without a zone were interpreted in %s", n.cfg.Location)
		}
	case shapeDateOnly:
		n.note("%s is a date without a time; taken as midnight %s", v.ptr, n.cfg.Location)
	}
}

// closeAt sets the closing time: at when known, else the time the webhook was
// received, with a note naming where the payload should have said it.
func (n *normalization) closeAt(at *time.Time, where ...value) {
	if at != nil {
		n.inc.Timestamps.ClosedAt = *at
		return
	}
	n.inc.Timestamps.ClosedAt = n.receivedAt
	ptrs := make([]string, len(where))
	for i, w := range where {
		ptrs[i] = w.ptr
	}
	n.note("resolution time missing (%s); closed_at is the time the webhook was received", strings.Join(ptrs, ", "))
}

// latest prefers a transition's time over a field that predates it by more
// than a minute — the field is stale, left over from before a reopen — and
// says so. With only one of them known it returns that one.
func (n *normalization) latest(field *time.Time, fieldPtr string, transition *time.Time, transitionWhat string) *time.Time {
	if field == nil {
		return transition
	}
	if transition != nil && field.Before(transition.Add(-time.Minute)) {
		n.note("%s (%s) predates %s (%s), so it is stale (the ticket was reopened and closed again); used %s",
			fieldPtr, field.Format(time.RFC3339), transitionWhat, transition.Format(time.RFC3339), transitionWhat)
		return transition
	}
	return field
}

// candidate is a vendor value that may say how severe an incident was.
type candidate struct {
	v   value
	key string // the text looked up in the severity map; may carry a prefix such as "urgency:"
}

// defaultSeverity is the source's default severity, medium when it has none.
func (c SourceConfig) defaultSeverity() events.Severity {
	if !c.DefaultSeverity.Valid() {
		return events.SeverityMedium
	}
	return c.DefaultSeverity
}

func cand(v value) candidate { return candidate{v: v, key: v.str()} }

// severity sets the incident's severity from the first candidate the source's
// map knows (or, with worst, the most severe of all it knows). Without one it
// uses the source's default and says why.
func (n *normalization) severity(worst bool, cands ...candidate) {
	rank := map[events.Severity]int{events.SeverityCritical: 5, events.SeverityHigh: 4, events.SeverityMedium: 3,
		events.SeverityLow: 2, events.SeverityInformational: 1}
	var found events.Severity
	var unknown []string
	for i, c := range cands {
		k := normKey(c.key)
		if k == "" || strings.HasSuffix(k, ":") {
			continue
		}
		if s, ok := n.cfg.Severity[k]; ok && s.Valid() {
			if !worst {
				n.inc.Severity = s
				if i > 0 && cands[0].v.ptr != c.v.ptr {
					n.note("no usable priority at %s; severity %s taken from %s %q", cands[0].v.ptr, s, c.v.ptr, clip(c.v.str(), 40))
				}
				return
			}
			if rank[s] > rank[found] {
				found = s
			}
			continue
		}
		if !worst {
			unknown = append(unknown, fmt.Sprintf("%s %q", c.v.ptr, clip(c.key, 40)))
		}
	}
	if found != "" {
		n.inc.Severity = found
		return
	}
	def := n.cfg.defaultSeverity()
	n.inc.Severity = def
	if len(unknown) > 0 {
		n.note("priority %s not in the severity mapping; used the default severity %s", strings.Join(unknown, ", "), def)
		return
	}
	ptrs := make([]string, 0, len(cands))
	for _, c := range cands {
		ptrs = append(ptrs, c.v.ptr)
	}
	if len(ptrs) > 3 {
		ptrs = append(ptrs[:3], "…")
	}
	n.note("no priority or severity given (%s); used the default severity %s", strings.Join(slices.Compact(ptrs), ", "), def)
}

// category sets the incident's category from the first value the source's
// category map knows; with passthrough, an unmapped non-empty first value is
// kept as it is.
func (n *normalization) category(passthrough bool, vals ...string) {
	for _, v := range vals {
		if c, ok := n.cfg.Category[normKey(v)]; ok {
			n.inc.Category = c
			return
		}
	}
	if passthrough && len(vals) > 0 && strings.TrimSpace(vals[0]) != "" {
		n.inc.Category = strings.TrimSpace(vals[0])
	}
}

// person adds someone involved, once per name and role. A person known only by
// an e-mail address is named by it; an address that is not one is dropped.
func (n *normalization) person(name, email string, role events.Role, team string) {
	name, email = strings.TrimSpace(name), strings.TrimSpace(email)
	if email != "" && !validEmail(email) {
		email = ""
	}
	if name == "" && validEmail(email) {
		name = email
	}
	if name == "" {
		return
	}
	if email == "" && validEmail(name) {
		email = name
	}
	for i, p := range n.inc.People {
		if strings.EqualFold(p.Name, name) && p.Role == role {
			if p.Email == "" {
				n.inc.People[i].Email = email
			}
			return
		}
	}
	n.inc.People = append(n.inc.People, events.Person{Name: name, Email: email, Role: role, Team: strings.TrimSpace(team)})
}

// setURL sets the incident's URL when s is an absolute http(s) URL.
func (n *normalization) setURL(s string) {
	if validURL(s) {
		n.inc.URL = strings.TrimSpace(s)
	}
}

// link adds a related link when s is an absolute http(s) URL.
func (n *normalization) link(title, s string) {
	s = strings.TrimSpace(s)
	if !validURL(s) {
		return
	}
	for _, l := range n.inc.Links {
		if l.URL == s {
			return
		}
	}
	n.inc.Links = append(n.inc.Links, events.Link{Title: title, URL: s})
}

// tag adds tags, each once (case-insensitively).
func (n *normalization) tag(tags ...string) {
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.ContainsFunc(n.inc.Tags, func(x string) bool { return strings.EqualFold(x, t) }) {
			n.inc.Tags = append(n.inc.Tags, t)
		}
	}
}

// asset adds an affected asset, once per name and kind.
func (n *normalization) asset(name, kind, id string) {
	name = strings.TrimSpace(name)
	if name == "" {
		return
	}
	for _, a := range n.inc.AffectedAssets {
		if a.Name == name && a.Kind == kind {
			return
		}
	}
	n.inc.AffectedAssets = append(n.inc.AffectedAssets, events.Asset{Name: name, Kind: kind, Identifier: strings.TrimSpace(id)})
}

// event adds a timeline entry.
func (n *normalization) event(at *time.Time, phase events.Phase, actor, action, detail string) {
	if at == nil || strings.TrimSpace(action) == "" {
		return
	}
	n.inc.Timeline = append(n.inc.Timeline, events.TimelineEntry{At: *at, Actor: strings.TrimSpace(actor), Phase: phase,
		Action: action, Detail: strings.TrimSpace(detail)})
}

func validURL(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 2000 || strings.ContainsAny(s, " \t\r\n<>\"{}|\\^`") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

var emailPattern = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func validEmail(s string) bool {
	if len(s) > 254 || !emailPattern.MatchString(s) || strings.Contains(s, "..") || strings.HasPrefix(s, ".") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

// plainText returns the text of a description: a string as itself, an
// Atlassian Document Format object as its text nodes, paragraphs on new lines.
func plainText(v value) string {
	if !v.isObject() {
		return v.str()
	}
	var sb strings.Builder
	var walk func(v value, depth int)
	walk = func(v value, depth int) {
		if depth > 50 || sb.Len() > 40000 {
			return
		}
		if t := v.get("text"); t.present {
			sb.WriteString(t.str())
		}
		for _, c := range v.get("content").items() {
			walk(c, depth+1)
		}
		switch v.get("type").str() {
		case "paragraph", "heading", "listItem", "codeBlock", "blockquote":
			sb.WriteString("\n")
		case "hardBreak":
			sb.WriteString("\n")
		}
	}
	walk(v, 0)
	return strings.TrimSpace(sb.String())
}

// Schema limits of incident.closed.v1, in characters.
const (
	maxTitle   = 500
	maxLong    = 20000
	maxShort   = 200
	maxTag     = 100
	maxNote    = 2000
	maxNotes   = 200
	maxAction  = 500
	maxListLen = 200
)

// finish cleans the incident to the schema's limits and validates it. A
// closing event with problems is a 422; an incident that still fails the
// schema after cleaning (a bug) is a 422 naming the canonical fields.
func (n *normalization) finish() (*events.IncidentClosed, error) {
	if len(n.problems) > 0 {
		return nil, httpapi.NewProblem(http.StatusUnprocessableEntity, "incomplete incident",
			"the "+n.source+" closing event lacks what a canonical incident needs", n.problems...)
	}
	inc := &n.inc
	inc.Source = n.source
	clean(inc)
	if inc.Title == "" {
		return nil, httpapi.NewProblem(http.StatusUnprocessableEntity, "incomplete incident",
			"the "+n.source+" closing event lacks what a canonical incident needs",
			httpapi.FieldError{Field: n.titlePtr, Reason: "required; has no printable text"})
	}
	b, err := json.Marshal(inc)
	if err != nil {
		return nil, fmt.Errorf("marshal incident: %w", err)
	}
	if err := events.Validate(events.TypeIncidentClosed, b); err != nil {
		var verr *events.ValidationError
		if !errors.As(err, &verr) {
			return nil, fmt.Errorf("validate incident: %w", err)
		}
		fields := make([]httpapi.FieldError, 0, len(verr.Problems))
		for _, p := range verr.Problems {
			fields = append(fields, httpapi.FieldError{Field: "(canonical)" + p.Field, Reason: p.Reason})
		}
		return nil, httpapi.NewProblem(http.StatusUnprocessableEntity, "incomplete incident",
			"the mapped incident is not valid "+events.TypeIncidentClosed, fields...)
	}
	return inc, nil
}

// clean makes every string valid, printable UTF-8 within the schema's limits
// (Postgres jsonb also refuses NUL), drops empty or invalid optional values,
// and bounds the lists.
func clean(inc *events.IncidentClosed) {
	inc.Title = cleanText(inc.Title, maxTitle, true)
	inc.Summary = cleanText(inc.Summary, maxLong, false)
	inc.Category = cleanText(inc.Category, maxTag, true)
	inc.Subcategory = cleanText(inc.Subcategory, maxTag, true)
	inc.RootCause = cleanText(inc.RootCause, maxLong, false)
	if !validURL(inc.URL) {
		inc.URL = ""
	}
	people := inc.People[:0]
	for _, p := range inc.People {
		p.Name = cleanText(p.Name, maxShort, true)
		p.Team = cleanText(p.Team, maxShort, true)
		if !validEmail(p.Email) {
			p.Email = ""
		}
		if p.Name != "" && p.Role.Valid() {
			people = append(people, p)
		}
	}
	inc.People = nilIfEmpty(bound(people, 500))
	timeline := inc.Timeline[:0]
	for _, e := range inc.Timeline {
		e.Actor = cleanText(e.Actor, maxShort, true)
		e.Action = cleanText(e.Action, maxAction, true)
		e.Detail = cleanText(e.Detail, maxLong, false)
		if e.Action != "" && e.Phase.Valid() {
			timeline = append(timeline, e)
		}
	}
	inc.Timeline = nilIfEmpty(bound(timeline, 5000))
	assets := inc.AffectedAssets[:0]
	for _, a := range inc.AffectedAssets {
		a.Name = cleanText(a.Name, maxShort, true)
		a.Kind = cleanText(a.Kind, maxShort, true)
		a.Identifier = cleanText(a.Identifier, maxShort, true)
		if a.Name != "" {
			assets = append(assets, a)
		}
	}
	inc.AffectedAssets = nilIfEmpty(bound(assets, 5000))
	links := inc.Links[:0]
	for _, l := range inc.Links {
		l.Title = cleanText(l.Title, maxTitle, true)
		if validURL(l.URL) {
			links = append(links, l)
		}
	}
	inc.Links = nilIfEmpty(bound(links, 500))
	tags := inc.Tags[:0]
	for _, t := range inc.Tags {
		if t = cleanText(t, maxTag, true); t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	inc.Tags = nilIfEmpty(bound(tags, maxListLen))
	notes := inc.Notes[:0]
	for _, s := range inc.Notes {
		if s = cleanText(s, maxNote, false); s != "" {
			notes = append(notes, s)
		}
	}
	if len(notes) > maxNotes {
		more := len(notes) - maxNotes + 1
		notes = append(notes[:maxNotes-1], strconv.Itoa(more)+" more notes left out")
	}
	inc.Notes = nilIfEmpty(notes)
}

// cleanText trims s, drops control characters (keeping new lines and tabs
// unless oneLine), repairs invalid UTF-8 and truncates to max characters.
func cleanText(s string, max int, oneLine bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			if oneLine {
				return ' '
			}
			return r
		case unicode.IsControl(r), r == '\uFFFE', r == '\uFFFF':
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > max {
		s = strings.TrimSpace(string(r[:max-1])) + "…"
	}
	return s
}

func bound[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func problemField(field, reason string) httpapi.FieldError {
	return httpapi.FieldError{Field: field, Reason: reason}
}
