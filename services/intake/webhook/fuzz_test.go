package webhook

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/afteraction/afteraction/pkg/httpapi"
)

// fuzzSource seeds f with source's fixtures and checks, for any body, that
// Handle returns exactly one of an incident, an ignore reason or a 4xx
// problem, and that any incident is valid incident.closed.v1.
func fuzzSource(f *testing.F, source string) {
	files, err := filepath.Glob(filepath.Join("testdata", source, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures for %s", source)
	}
	for _, file := range files {
		f.Add(fixture(f, filepath.Join(source, filepath.Base(file))))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"a":[1,2,{"b":null}]}`))
	h := githubHeader()
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := Handle(DefaultConfig(), source, h, body, received)
		if err != nil {
			var p *httpapi.Problem
			if !errors.As(err, &p) {
				t.Fatalf("error is not a problem: %v", err)
			}
			if p.Status < 400 || p.Status >= 500 {
				t.Fatalf("problem status %d: %v", p.Status, p)
			}
			if res.Incident != nil || res.Ignored != "" {
				t.Fatalf("error with a result: %+v", res)
			}
			return
		}
		if (res.Incident == nil) == (res.Ignored == "") {
			t.Fatalf("want exactly one of incident and ignored, got %+v", res)
		}
		if res.Incident != nil {
			mustValidate(t, res.Incident)
			if source != SourceCanonical && res.Incident.Source != source {
				t.Fatalf("source %q, want %q", res.Incident.Source, source)
			}
		}
	})
}

func FuzzPagerDuty(f *testing.F)  { fuzzSource(f, SourcePagerDuty) }
func FuzzJira(f *testing.F)       { fuzzSource(f, SourceJira) }
func FuzzServiceNow(f *testing.F) { fuzzSource(f, SourceServiceNow) }
func FuzzOpsgenie(f *testing.F)   { fuzzSource(f, SourceOpsgenie) }
func FuzzStatuspage(f *testing.F) { fuzzSource(f, SourceStatuspage) }
func FuzzGitHub(f *testing.F)     { fuzzSource(f, SourceGitHub) }
func FuzzTheHive(f *testing.F)    { fuzzSource(f, SourceTheHive) }
func FuzzCanonical(f *testing.F)  { fuzzSource(f, SourceCanonical) }

// FuzzParseTime checks the shared timestamp parser alone: no panic, and any
// time it returns is UTC within 1980–9999.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-20T10:00:00.000-0800", "2026-11-20 17:01:12", "2026-11-20", "1795219200123",
		"1795219200123456789", "1795219200.5", "0", "1970-01-01 07:47:10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _, err := parseTime(value{v: s, present: true}, nil)
		if err != nil {
			return
		}
		if got.Location() != nil && got.Location().String() != "UTC" || got.Before(minTime) || got.After(maxTime) {
			t.Fatalf("parseTime(%q) = %v", s, got)
		}
	})
}
