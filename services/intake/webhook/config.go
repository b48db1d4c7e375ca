package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// Config holds, per source, what Handle needs to verify and map that source's
// webhooks. Build it with DefaultConfig or LoadConfig; a source missing from
// Sources is handled with its defaults and no secret.
type Config struct {
	Sources map[string]SourceConfig
}

// SourceConfig is the configuration of one source.
type SourceConfig struct {
	// Secret, when set, makes Handle reject requests whose signature (or bearer
	// token, for sources that do not sign) does not match it.
	Secret string
	// Location interprets timestamps that carry no zone (e.g. ServiceNow's
	// "YYYY-MM-DD HH:MM:SS"); nil means UTC.
	Location *time.Location
	// BaseURL is the vendor instance's web address, used to build links the
	// payload does not carry (ServiceNow, TheHive). Optional.
	BaseURL string
	// Severity maps a vendor priority/severity value (matched
	// case-insensitively) to a canonical severity.
	Severity map[string]events.Severity
	// DefaultSeverity is used, with a note, when the payload has no priority
	// or one Severity does not know.
	DefaultSeverity events.Severity
	// Category maps a vendor category (case-insensitively) to a canonical one.
	Category map[string]string
	// DoneStatuses are the values that make an event a closing one; what they
	// match depends on the source (see MAPPING.md): Jira status names,
	// ServiceNow states, TheHive statuses, Statuspage incident statuses,
	// PagerDuty event types, Opsgenie actions, GitHub issue actions.
	DoneStatuses []string
}

// Source names, as they appear in POST /v1/webhooks/{source}, in Source of the
// canonical incident and in the NATS subject incidents.closed.<source>.
const (
	SourcePagerDuty  = "pagerduty"
	SourceJira       = "jira"
	SourceServiceNow = "servicenow"
	SourceOpsgenie   = "opsgenie"
	SourceStatuspage = "statuspage"
	SourceGitHub     = "github"
	SourceTheHive    = "thehive"
	SourceCanonical  = "canonical"
)

// Sources returns the source names Handle accepts, sorted.
func Sources() []string {
	return slices.Sorted(maps.Keys(normalizers))
}

func sevMap(pairs ...string) map[string]events.Severity {
	m := make(map[string]events.Severity, len(pairs)/2+5)
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = events.Severity(pairs[i+1])
	}
	// Canonical names always map to themselves.
	for _, s := range []events.Severity{events.SeverityCritical, events.SeverityHigh, events.SeverityMedium,
		events.SeverityLow, events.SeverityInformational} {
		if _, ok := m[string(s)]; !ok {
			m[string(s)] = s
		}
	}
	return m
}

// DefaultConfig returns every source with its default mappings, UTC for
// zone-less times and no secrets.
func DefaultConfig() Config {
	pSeverity := []string{"p1", "critical", "p2", "high", "p3", "medium", "p4", "low", "p5", "informational"}
	sevWords := []string{"sev1", "critical", "sev2", "high", "sev3", "medium", "sev4", "low", "sev5", "informational",
		"sev-1", "critical", "sev-2", "high", "sev-3", "medium", "sev-4", "low", "sev-5", "informational",
		"sev0", "critical", "info", "informational"}
	return Config{Sources: map[string]SourceConfig{
		SourcePagerDuty: {
			// Priority (P1..P5) first; without one, the urgency.
			Severity:        sevMap(append(pSeverity, "urgency:high", "high", "urgency:low", "low")...),
			DefaultSeverity: events.SeverityMedium,
			DoneStatuses:    []string{"incident.resolved"},
		},
		SourceJira: {
			Severity: sevMap("highest", "critical", "blocker", "critical", "high", "high", "major", "high",
				"medium", "medium", "low", "low", "minor", "low", "lowest", "informational", "trivial", "informational"),
			DefaultSeverity: events.SeverityMedium,
			Category:        map[string]string{"security incident": "security", "outage": "outage"},
			DoneStatuses:    []string{"Done", "Resolved", "Closed"},
		},
		SourceServiceNow: {
			Severity: sevMap("1", "critical", "2", "high", "3", "medium", "4", "low", "5", "informational",
				"1 - critical", "critical", "2 - high", "high", "3 - moderate", "medium", "4 - low", "low",
				"5 - planning", "informational", "moderate", "medium", "planning", "informational"),
			DefaultSeverity: events.SeverityMedium,
			Category: map[string]string{"network": "outage", "hardware": "outage", "software": "outage",
				"database": "outage", "inquiry": "other", "inquiry / help": "other"},
			DoneStatuses: []string{"6", "7", "Resolved", "Closed"},
		},
		SourceOpsgenie: {
			Severity:        sevMap(pSeverity...),
			DefaultSeverity: events.SeverityMedium,
			DoneStatuses:    []string{"Close"},
		},
		SourceStatuspage: {
			// impact "none" rates nothing (see normalizeStatuspage): not mapped.
			Severity:        sevMap("critical", "critical", "major", "high", "minor", "low", "maintenance", "informational"),
			DefaultSeverity: events.SeverityMedium,
			DoneStatuses:    []string{"resolved", "postmortem"},
		},
		SourceGitHub: {
			Severity: sevMap(append(append(pSeverity, sevWords...),
				"severity:critical", "critical", "severity:high", "high", "severity:medium", "medium",
				"severity:low", "low", "severity:informational", "informational",
				"severity/critical", "critical", "severity/high", "high", "severity/medium", "medium", "severity/low", "low",
				"priority:critical", "critical", "priority:high", "high", "priority:medium", "medium", "priority:low", "low")...),
			DefaultSeverity: events.SeverityMedium,
			Category:        map[string]string{"security": "security", "outage": "outage", "incident": "outage"},
			DoneStatuses:    []string{"closed"},
		},
		SourceTheHive: {
			Severity:        sevMap("1", "low", "2", "medium", "3", "high", "4", "critical"),
			DefaultSeverity: events.SeverityMedium,
			DoneStatuses: []string{"Resolved", "Closed", "TruePositive", "FalsePositive", "Indeterminate",
				"Duplicated", "Other"},
		},
		SourceCanonical: {},
	}}
}

// source returns the configuration of name, falling back to its defaults.
func (c Config) source(name string) SourceConfig {
	if sc, ok := c.Sources[name]; ok {
		return sc
	}
	return DefaultConfig().Sources[name]
}

// String describes c for the start-up log, with secrets masked.
func (c Config) String() string {
	var sb strings.Builder
	for _, name := range slices.Sorted(maps.Keys(c.Sources)) {
		sc := c.Sources[name]
		secret := "none"
		if sc.Secret != "" {
			secret = "***"
		}
		loc := "UTC"
		if sc.Location != nil {
			loc = sc.Location.String()
		}
		fmt.Fprintf(&sb, "%s{secret=%s tz=%s severities=%d categories=%d done=%q} ", name, secret, loc,
			len(sc.Severity), len(sc.Category), sc.DoneStatuses)
	}
	return strings.TrimSpace(sb.String())
}

// mappingsFile is the shape of WEBHOOK_MAPPINGS_FILE: per source, entries that
// override the defaults. Severity and category entries are merged over the
// default maps key by key; done_statuses and default_severity replace them.
type mappingsFile map[string]struct {
	Severity        map[string]events.Severity `json:"severity"`
	DefaultSeverity events.Severity            `json:"default_severity"`
	Category        map[string]string          `json:"category"`
	DoneStatuses    []string                   `json:"done_statuses"`
}

// LoadConfig builds the configuration from the environment:
//
//	WEBHOOK_<SOURCE>_SECRET      signing secret (or bearer token) per source
//	WEBHOOK_<SOURCE>_TZ          IANA zone for zone-less times, e.g. WEBHOOK_SERVICENOW_TZ=Europe/Berlin
//	WEBHOOK_<SOURCE>_BASE_URL    instance address for links (ServiceNow, TheHive)
//	WEBHOOK_MAPPINGS_FILE        JSON overriding severity/category/done-status mappings per source
//	WEBHOOK_JIRA_DONE_STATUSES   comma-separated Jira status names that close an issue
//
// <SOURCE> is the upper-case source name (PAGERDUTY, JIRA, SERVICENOW, ...).
// It fails on an unknown zone, an unreadable or invalid mappings file, or a
// bad base URL.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	if path := strings.TrimSpace(getenv("WEBHOOK_MAPPINGS_FILE")); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read WEBHOOK_MAPPINGS_FILE: %w", err)
		}
		if err := applyMappings(&cfg, b); err != nil {
			return Config{}, fmt.Errorf("WEBHOOK_MAPPINGS_FILE %s: %w", path, err)
		}
	}
	for _, name := range Sources() {
		sc := cfg.Sources[name]
		prefix := "WEBHOOK_" + strings.ToUpper(name) + "_"
		sc.Secret = strings.TrimSpace(getenv(prefix + "SECRET"))
		if tz := strings.TrimSpace(getenv(prefix + "TZ")); tz != "" {
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return Config{}, fmt.Errorf("%sTZ: %w", prefix, err)
			}
			sc.Location = loc
		}
		if base := strings.TrimSpace(getenv(prefix + "BASE_URL")); base != "" {
			u, err := url.Parse(base)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return Config{}, fmt.Errorf("%sBASE_URL %q: want an http(s) URL", prefix, base)
			}
			sc.BaseURL = strings.TrimRight(base, "/")
		}
		cfg.Sources[name] = sc
	}
	if v := getenv("WEBHOOK_JIRA_DONE_STATUSES"); strings.TrimSpace(v) != "" {
		sc := cfg.Sources[SourceJira]
		sc.DoneStatuses = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				sc.DoneStatuses = append(sc.DoneStatuses, s)
			}
		}
		cfg.Sources[SourceJira] = sc
	}
	return cfg, nil
}

func applyMappings(cfg *Config, b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f mappingsFile
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	for name, m := range f {
		sc, ok := cfg.Sources[name]
		if !ok || name == SourceCanonical {
			return fmt.Errorf("unknown source %q (want one of %s)", name, strings.Join(Sources(), ", "))
		}
		if len(m.Severity) > 0 {
			sev := maps.Clone(sc.Severity)
			for k, s := range m.Severity {
				if !s.Valid() {
					return fmt.Errorf("%s.severity[%q]: %q is not a severity", name, k, s)
				}
				sev[normKey(k)] = s
			}
			sc.Severity = sev
		}
		if m.DefaultSeverity != "" {
			if !m.DefaultSeverity.Valid() {
				return fmt.Errorf("%s.default_severity: %q is not a severity", name, m.DefaultSeverity)
			}
			sc.DefaultSeverity = m.DefaultSeverity
		}
		if len(m.Category) > 0 {
			cat := maps.Clone(sc.Category)
			if cat == nil {
				cat = map[string]string{}
			}
			for k, c := range m.Category {
				if strings.TrimSpace(c) == "" || len([]rune(c)) > 100 {
					return fmt.Errorf("%s.category[%q]: want 1–100 characters", name, k)
				}
				cat[normKey(k)] = c
			}
			sc.Category = cat
		}
		if m.DoneStatuses != nil {
			if len(m.DoneStatuses) == 0 {
				return fmt.Errorf("%s.done_statuses: empty list would close nothing", name)
			}
			sc.DoneStatuses = m.DoneStatuses
		}
		cfg.Sources[name] = sc
	}
	return nil
}

// normKey is how mapping keys and vendor values are compared.
func normKey(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// isDone reports whether s is one of the source's done statuses.
func (sc SourceConfig) isDone(s string) bool {
	k := normKey(s)
	if k == "" {
		return false
	}
	for _, d := range sc.DoneStatuses {
		if normKey(d) == k {
			return true
		}
	}
	return false
}
