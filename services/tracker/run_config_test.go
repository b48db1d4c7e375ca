package tracker_test

import (
	"strings"
	"testing"
	_ "time/tzdata" // the zones below resolve without a system zone database

	"github.com/afteraction/afteraction/services/tracker"
)

func TestLoadConfigTimezone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value    string
		wantZone string
		wantErr  bool
	}{
		{"", "UTC", false},
		{"UTC", "UTC", false},
		{"Europe/Berlin", "Europe/Berlin", false},
		{"America/Los_Angeles", "America/Los_Angeles", false},
		{"Mars/Olympus_Mons", "", true},
		{"+02:00", "", true},
		{"Local", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			cfg, err := tracker.LoadConfig(func(k string) string {
				if k == "TRACKER_TIMEZONE" {
					return tt.value
				}
				return ""
			})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "TRACKER_TIMEZONE") {
					t.Fatalf("err = %v, want one naming TRACKER_TIMEZONE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Timezone.String() != tt.wantZone {
				t.Errorf("zone = %s, want %s", cfg.Timezone, tt.wantZone)
			}
		})
	}
}
