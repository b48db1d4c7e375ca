package report_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/services/report"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	seed := base64.StdEncoding.EncodeToString(make([]byte, 32))
	certs := func(env map[string]string) map[string]string {
		env["REPORT_CERT_FILE"], env["REPORT_CERT_KEY_FILE"] = "/run/secrets/cert.pem", "/run/secrets/cert-key.pem"
		return env
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"defaults with a key", certs(map[string]string{"REPORT_SIGNING_KEY": seed}), ""},
		{"key file", certs(map[string]string{"REPORT_SIGNING_KEY_FILE": "/run/secrets/report-key"}), ""},
		{"dev key", map[string]string{"REPORT_DEV_SIGNING_KEY": "true"}, ""},
		{"redaction rules", map[string]string{"REPORT_DEV_SIGNING_KEY": "true", "REPORT_REDACT_RULES": "emails, ips",
			"REPORT_REDACT_PATTERNS": `["ACME-\\d+"]`}, ""},
		{"unknown redaction rule", map[string]string{"REPORT_DEV_SIGNING_KEY": "true", "REPORT_REDACT_RULES": "names,faces"}, "REPORT_REDACT_RULES"},
		{"redaction patterns not JSON", map[string]string{"REPORT_DEV_SIGNING_KEY": "true", "REPORT_REDACT_PATTERNS": "ACME-\\d+"}, "REPORT_REDACT_PATTERNS"},
		{"key without certificate", map[string]string{"REPORT_SIGNING_KEY": seed}, "no PDF signing certificate"},
		{"certificate without its key", map[string]string{"REPORT_SIGNING_KEY": seed, "REPORT_CERT_FILE": "/c.pem"}, "set both or neither"},
		{"no key", map[string]string{}, "no signing key"},
		{"dev key off", map[string]string{"REPORT_DEV_SIGNING_KEY": "false"}, "no signing key"},
		{"both", map[string]string{"REPORT_SIGNING_KEY": seed, "REPORT_SIGNING_KEY_FILE": "/k"}, "not both"},
		{"short key", map[string]string{"REPORT_SIGNING_KEY": base64.StdEncoding.EncodeToString([]byte("short"))}, "32-byte"},
		{"bad tokens", map[string]string{"REPORT_SIGNING_KEY": seed, "API_TOKENS": "compliance"}, "API_TOKENS"},
		{"bad replicas", map[string]string{"REPORT_SIGNING_KEY": seed, "STREAM_REPLICAS": "0"}, "STREAM_REPLICAS"},
		{"trusted keys", certs(map[string]string{"REPORT_SIGNING_KEY": seed, "REPORT_TRUSTED_PUBLIC_KEYS": seed + ", " + seed + ","}), ""},
		{"trusted key not base64", map[string]string{"REPORT_SIGNING_KEY": seed, "REPORT_TRUSTED_PUBLIC_KEYS": seed + ",not-a-key!"}, "REPORT_TRUSTED_PUBLIC_KEYS entry 2"},
		{"trusted key too short", map[string]string{"REPORT_SIGNING_KEY": seed, "REPORT_TRUSTED_PUBLIC_KEYS": base64.StdEncoding.EncodeToString([]byte("short"))}, "REPORT_TRUSTED_PUBLIC_KEYS entry 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := report.LoadConfig(func(k string) string { return tt.env[k] })
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.HTTPAddr != ":8083" || cfg.StreamReplicas != 1 {
					t.Errorf("defaults: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadConfigTrustedPublicKeys(t *testing.T) {
	t.Parallel()
	a, b := make([]byte, 32), make([]byte, 32)
	a[0], b[0] = 1, 2
	env := map[string]string{
		"REPORT_DEV_SIGNING_KEY":     "true",
		"REPORT_TRUSTED_PUBLIC_KEYS": base64.StdEncoding.EncodeToString(a) + ", " + base64.RawURLEncoding.EncodeToString(b),
	}
	cfg, err := report.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TrustedPublicKeys) != 2 || !bytes.Equal(cfg.TrustedPublicKeys[0], a) || !bytes.Equal(cfg.TrustedPublicKeys[1], b) {
		t.Fatalf("trusted keys = %x, want %x and %x", cfg.TrustedPublicKeys, a, b)
	}
}

func TestDevSignerIsPersisted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, err := report.DevSigner(context.Background(), f.store)
	if err != nil {
		t.Fatal(err)
	}
	b, err := report.DevSigner(context.Background(), f.store)
	if err != nil {
		t.Fatal(err)
	}
	if a.KeyID() != b.KeyID() || len(a.KeyID()) != 16 {
		t.Fatalf("dev key ids %q and %q: want the same 16-hex id after a restart", a.KeyID(), b.KeyID())
	}
}

func TestDevPDFSignerIsPersisted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, err := report.DevPDFSigner(context.Background(), f.store, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := report.DevPDFSigner(context.Background(), f.store, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatalf("dev certificates %s and %s: want the same certificate after a restart", a.Fingerprint(), b.Fingerprint())
	}
}
