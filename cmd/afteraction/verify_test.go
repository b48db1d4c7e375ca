package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/report/custody"
	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
	reportpdf "github.com/afteraction/afteraction/services/report/pdf"
)

// verifyExit runs `afteraction verify args...` and returns its exit code and output.
func verifyExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	err := verifyCommand(context.Background(), args, &out)
	var exit *exitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.code, out.String() + exit.msg
	default:
		t.Fatalf("verify %v: %v", args, err)
		return -1, ""
	}
}

func exampleReviewForTest(t *testing.T) events.ReviewCompleted {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.review.completed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	rv, err := events.Decode[events.ReviewCompleted](events.TypeReviewCompleted, b)
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerifyOffline(t *testing.T) {
	t.Parallel()
	certFile, _, signer := padestest.KeyPairFiles(t, "afteraction reports")
	oldCertFile, _, oldSigner := padestest.KeyPairFiles(t, "afteraction reports 2025")
	_, _, stranger := padestest.KeyPairFiles(t, "someone else")

	r, err := reportpdf.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	rv := exampleReviewForTest(t)
	out, err := r.Render(reportpdf.Input{Review: rv, ReportID: "r-1", Version: 1, DataSHA256: strings.Repeat("ab", 32),
		GeneratedAt: time.Date(2026, 3, 20, 11, 5, 0, 0, time.UTC), CertSHA256: signer.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(s *pades.Signer) []byte {
		b, err := s.Sign(out.PDF, pades.Info{Reason: "test", Date: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	genuine := sign(signer)
	padestest.RequireValid(t, genuine)
	changed := bytes.Clone(genuine)
	changed[len(changed)/3] ^= 0x01

	tests := []struct {
		name     string
		doc      []byte
		certs    []string
		wantCode int
		want     string
	}{
		{"authentic", genuine, []string{certFile}, exitAuthentic, "AUTHENTIC"},
		{"one byte changed", changed, []string{certFile}, exitAltered, "ALTERED"},
		{"re-signed with another key", sign(stranger), []string{certFile}, exitUnknownSigner, "UNKNOWN SIGNER"},
		{"unsigned", out.PDF, []string{certFile}, exitUnknownSigner, "no signature"},
		{"earlier certificate listed", sign(oldSigner), []string{certFile, oldCertFile}, exitAuthentic, "AUTHENTIC"},
		{"earlier certificate not listed", sign(oldSigner), []string{certFile}, exitUnknownSigner, "UNKNOWN SIGNER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{}
			for _, c := range tt.certs {
				args = append(args, "--cert", c)
			}
			code, text := verifyExit(t, append(args, writeTemp(t, "report.pdf", tt.doc))...)
			if code != tt.wantCode || !strings.Contains(text, tt.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit %d and %q", code, text, tt.wantCode, tt.want)
			}
		})
	}
	if err := verifyCommand(context.Background(), []string{writeTemp(t, "r.pdf", genuine)}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "--cert") {
		t.Errorf("without --cert: %v, want a usage error naming --cert", err)
	}
}

func TestVerifyCustodyExport(t *testing.T) {
	t.Parallel()
	var entries []custody.Entry
	for i, a := range []string{custody.Rendered, custody.Published, custody.Downloaded, custody.Delivered} {
		var prev *custody.Entry
		if i > 0 {
			prev = &entries[i-1]
		}
		entries = append(entries, custody.Next(prev, custody.Entry{ReportID: "r-1", At: time.Now(), Action: a, Version: 1,
			Actor: "compliance", Detail: a}))
	}
	export := func(es []custody.Entry) string {
		b, err := json.Marshal(map[string]any{"report_id": "r-1", "entries": es})
		if err != nil {
			t.Fatal(err)
		}
		return writeTemp(t, "custody.json", b)
	}
	if code, out := verifyExit(t, "--custody", export(entries)); code != 0 || !strings.Contains(out, "INTACT") {
		t.Errorf("intact export: exit %d\n%s", code, out)
	}
	entries[2].Actor = "someone else"
	if code, out := verifyExit(t, "--custody", export(entries)); code != exitAltered || !strings.Contains(out, "BROKEN at entry 3") {
		t.Errorf("edited export: exit %d\n%s", code, out)
	}
}
