package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
)

// received is the receivedAt every test passes: the fallback closing time.
var received = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mutate decodes a fixture (numbers kept exact), lets edit change it and re-encodes it.
func mutate(t testing.TB, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(fixture(t, name)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// obj walks m along keys, for editing fixtures.
func obj(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

func githubHeader() http.Header {
	h := http.Header{}
	h.Set("X-GitHub-Event", "issues")
	return h
}

// closing runs Handle and requires a valid canonical incident.
func closing(t testing.TB, cfg Config, source string, h http.Header, body []byte) *events.IncidentClosed {
	t.Helper()
	res, err := Handle(cfg, source, h, body, received)
	if err != nil {
		t.Fatalf("Handle(%s): %v", source, err)
	}
	if res.Incident == nil || res.Ignored != "" {
		t.Fatalf("Handle(%s): want an incident, got ignored %q", source, res.Ignored)
	}
	mustValidate(t, res.Incident)
	return res.Incident
}

func mustValidate(t testing.TB, inc *events.IncidentClosed) {
	t.Helper()
	b, err := json.Marshal(inc)
	if err != nil {
		t.Fatalf("marshal incident: %v", err)
	}
	if err := events.Validate(events.TypeIncidentClosed, b); err != nil {
		t.Fatalf("incident does not validate: %v\n%s", err, b)
	}
}

// ignored runs Handle and requires an ignored, non-closing event.
func ignored(t testing.TB, cfg Config, source string, h http.Header, body []byte) string {
	t.Helper()
	res, err := Handle(cfg, source, h, body, received)
	if err != nil {
		t.Fatalf("Handle(%s): %v", source, err)
	}
	if res.Incident != nil || res.Ignored == "" {
		t.Fatalf("Handle(%s): want ignored, got %+v", source, res)
	}
	return res.Ignored
}

// problem runs Handle and requires a problem with status naming field.
func problem(t testing.TB, cfg Config, source string, h http.Header, body []byte, status int, field string) *httpapi.Problem {
	t.Helper()
	res, err := Handle(cfg, source, h, body, received)
	if err == nil {
		t.Fatalf("Handle(%s): want a %d problem, got %+v", source, status, res)
	}
	var p *httpapi.Problem
	if !errors.As(err, &p) {
		t.Fatalf("Handle(%s): error %T is not a *httpapi.Problem: %v", source, err, err)
	}
	if p.Status != status {
		t.Fatalf("Handle(%s): status %d, want %d (%v)", source, p.Status, status, p)
	}
	if field != "-" {
		for _, f := range p.Errors {
			if f.Field == field {
				return p
			}
		}
		t.Fatalf("Handle(%s): problem %v does not name field %q (errors %+v)", source, p, field, p.Errors)
	}
	return p
}

func eq(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func ts(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func hasNote(t testing.TB, inc *events.IncidentClosed, substr string) {
	t.Helper()
	for _, n := range inc.Notes {
		if bytes.Contains([]byte(n), []byte(substr)) {
			return
		}
	}
	t.Errorf("no note containing %q in %q", substr, inc.Notes)
}
