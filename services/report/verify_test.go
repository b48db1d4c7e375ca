package report_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/services/report"
)

func TestSigningKeysAreImmutable(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // one key recorded, no versions referencing it
	ctx := context.Background()
	for _, stmt := range []string{
		`UPDATE signing_keys SET public_key = decode(repeat('00', 32), 'hex')`,
		`DELETE FROM signing_keys`,
		`TRUNCATE signing_keys CASCADE`,
	} {
		_, err := f.pool.Exec(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "signing keys are immutable") {
			t.Errorf("%s: err = %v, want the immutability trigger to refuse it", stmt, err)
		}
	}
	keys, err := f.store.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[0].PublicKey.Equal(f.signer.Public()) {
		t.Fatalf("keys = %+v, want the registered key unchanged", keys)
	}
}

// TestVerifyTrustsOnlyConfiguredKeys stands in for someone who can write the
// report schema: they record a key of their own and publish a version signed
// with it. Only configuration makes such a key trusted.
func TestVerifyTrustsOnlyConfiguredKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	reportID := report.ReportIDFor(rv.IncidentID)
	if err := f.svc.HandleReviewCompleted(ctx, message("e1"), rv); err != nil {
		t.Fatal(err)
	}

	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 0x42
	forger, err := report.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.RegisterKey(ctx, forger.KeyID(), forger.Public()); err != nil {
		t.Fatal(err)
	}
	forgery, err := report.NewService(f.store, f.objects, renderer, forger, f.pdfSigner, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rv.Summary += " Nothing went wrong."
	rv.Amendment = 1
	if err := forgery.HandleReviewCompleted(ctx, message("e2"), rv); err != nil {
		t.Fatal(err)
	}
	pdfOf := func(n int) []byte {
		t.Helper()
		v, pdf, err := f.store.VersionPDF(ctx, reportID, n)
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != n {
			t.Fatalf("version %d has number %d", n, v.Version)
		}
		return pdf
	}
	genuine, forged := pdfOf(1), pdfOf(2)

	tests := []struct {
		name      string
		trusted   report.TrustedKeys
		pdf       []byte
		wantValid bool
		wantKey   string
		reason    string
	}{
		{"current key", report.NewTrustedKeys(f.signer.Public()), genuine, true, f.signer.KeyID(), "unaltered"},
		{"key only in the database", report.NewTrustedKeys(f.signer.Public()), forged, false, forger.KeyID(), forger.KeyID() + " is not trusted"},
		{"key listed as trusted", report.NewTrustedKeys(f.signer.Public(), forger.Public()), forged, true, forger.KeyID(), "unaltered"},
		{"earlier key no longer current", report.NewTrustedKeys(forger.Public(), f.signer.Public()), genuine, true, f.signer.KeyID(), "unaltered"},
		{"trusted key id, other key bytes", report.TrustedKeys{f.signer.KeyID(): forger.Public()}, genuine, false, f.signer.KeyID(), "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := report.Verify(ctx, f.store, tt.trusted, []*x509.Certificate{f.pdfSigner.Certificate()}, tt.pdf)
			if err != nil {
				t.Fatal(err)
			}
			if res.Valid != tt.wantValid || res.KeyID != tt.wantKey || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("Verify = %+v, want valid %v, key %s and a reason mentioning %q", res, tt.wantValid, tt.wantKey, tt.reason)
			}
		})
	}
}
