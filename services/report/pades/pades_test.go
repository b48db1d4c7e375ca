package pades_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
)

var signedAt = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func plainPDF(t *testing.T) []byte {
	t.Helper()
	f := fpdf.New("P", "mm", "A4", "")
	f.SetCreationDate(signedAt)
	f.AddPage()
	f.SetFont("Helvetica", "", 12)
	f.Cell(0, 10, "Incident report: the signed bytes")
	var b bytes.Buffer
	if err := f.Output(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSignedPDFPassesPdfsigAndQpdf(t *testing.T) {
	t.Parallel()
	s := padestest.Signer(t, "afteraction test reports")
	signed, err := s.Sign(plainPDF(t), pades.Info{Name: "afteraction", Reason: "incident report", Date: signedAt})
	if err != nil {
		t.Fatal(err)
	}
	padestest.RequireValid(t, signed)

	res := pades.Verify(signed, []*x509.Certificate{s.Certificate()})
	if res.Status != pades.Authentic || res.Fingerprint != s.Fingerprint() {
		t.Fatalf("Verify = %v (%s), fingerprint %s; want AUTHENTIC by %s", res.Status, res.Reason, res.Fingerprint, s.Fingerprint())
	}
}

func TestVerifyOutcomes(t *testing.T) {
	t.Parallel()
	current, previous, stranger := padestest.Signer(t, "current"), padestest.Signer(t, "previous"), padestest.Signer(t, "stranger")
	plain := plainPDF(t)
	sign := func(s *pades.Signer) []byte {
		t.Helper()
		b, err := s.Sign(plain, pades.Info{Reason: "test", Date: signedAt})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	genuine := sign(current)
	changed := bytes.Clone(genuine)
	i := bytes.Index(changed, []byte("/Producer"))
	if i < 0 {
		t.Fatal("no /Producer in the test PDF")
	}
	changed[i+2] ^= 0x20 // one byte inside the signed range
	appended := append(bytes.Clone(genuine), []byte("\n% appended after signing\n")...)
	contents := bytes.Clone(genuine)
	j := bytes.Index(contents, []byte("/Contents<")) + len("/Contents<") + 40
	contents[j] = map[bool]byte{true: 'a', false: 'b'}[contents[j] != 'a'] // one hex digit of the CMS

	trusted := []*x509.Certificate{current.Certificate(), previous.Certificate()}
	tests := []struct {
		name   string
		doc    []byte
		want   pades.Status
		reason string
	}{
		{"genuine", genuine, pades.Authentic, "unaltered"},
		{"signed with a rotated-out key still listed", sign(previous), pades.Authentic, "unaltered"},
		{"one byte changed", changed, pades.Altered, "digest mismatch"},
		{"bytes appended", appended, pades.Altered, "no signature covers the whole file"},
		{"signature damaged", contents, pades.Altered, ""},
		{"re-signed with another key", sign(stranger), pades.UnknownSigner, "not a trusted certificate"},
		{"unsigned", plain, pades.UnknownSigner, "no signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := pades.Verify(tt.doc, trusted)
			if res.Status != tt.want || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("Verify = %v (%s), want %v with a reason mentioning %q", res.Status, res.Reason, tt.want, tt.reason)
			}
		})
	}

	t.Run("pdfsig sees the changed byte", func(t *testing.T) {
		if out := padestest.Pdfsig(t, changed); !strings.Contains(out, "Digest Mismatch") {
			t.Errorf("pdfsig on a changed byte:\n%s", out)
		}
	})
}

func TestNewSignerRefusesWeakOrMismatchedKeys(t *testing.T) {
	t.Parallel()
	certA, _, err := pades.SelfSigned("a", signedAt)
	if err != nil {
		t.Fatal(err)
	}
	_, keyB, err := pades.SelfSigned("b", signedAt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pades.NewSigner(certA, keyB); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: err = %v", err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pades.NewSigner(certA, weak); err == nil || !strings.Contains(err.Error(), "at least 2048") {
		t.Errorf("RSA 1024: err = %v", err)
	}
}

func TestKeyAndCertificatesRoundTripThroughPEM(t *testing.T) {
	t.Parallel()
	cert, key, err := pades.SelfSigned("pem", signedAt)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pades.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	key2, err := pades.ParseKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pades.ParseCertificates(pades.EncodeCertificates(cert, cert))
	if err != nil || len(certs) != 2 || !certs[0].Equal(cert) {
		t.Fatalf("ParseCertificates = %v, %v", certs, err)
	}
	if _, err := pades.NewSigner(certs[0], key2); err != nil {
		t.Fatal(err)
	}
	if _, err := pades.ParseCertificates([]byte("not a certificate")); err == nil {
		t.Error("ParseCertificates accepted garbage")
	}
}
