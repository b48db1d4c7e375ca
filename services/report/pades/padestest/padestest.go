// Package padestest checks signed PDFs with independent tools in tests:
// Poppler's pdfsig for the signature and qpdf for the file structure.
package padestest

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/services/report/pades"
)

// Pdfsig runs `pdfsig -nocert` on doc and returns its output. It skips the
// test when pdfsig is not installed (CI installs poppler-utils).
func Pdfsig(t testing.TB, doc []byte) string {
	t.Helper()
	if _, err := exec.LookPath("pdfsig"); err != nil {
		t.Skip("pdfsig (poppler-utils) not installed")
	}
	path := filepath.Join(t.TempDir(), "signed.pdf")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("pdfsig", "-nocert", path).CombinedOutput()
	return string(out)
}

// RequireValid fails the test unless pdfsig reports doc's signature valid
// over the whole document and qpdf --check finds the file clean.
func RequireValid(t testing.TB, doc []byte) {
	t.Helper()
	out := Pdfsig(t, doc)
	for _, want := range []string{"Signature Validation: Signature is Valid", "Total document signed"} {
		if !strings.Contains(out, want) {
			t.Errorf("pdfsig output lacks %q:\n%s", want, out)
		}
	}
	if _, err := exec.LookPath("qpdf"); err != nil {
		return
	}
	path := filepath.Join(t.TempDir(), "checked.pdf")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qpdf", "--check", path).CombinedOutput(); err != nil {
		t.Errorf("qpdf --check: %v\n%s", err, out)
	}
}

// Signer returns a new self-signed ECDSA P-256 signer named name.
func Signer(t testing.TB, name string) *pades.Signer {
	t.Helper()
	cert, key, err := pades.SelfSigned(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := pades.NewSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// KeyPairFiles creates a self-signed ECDSA P-256 certificate named name,
// writes it and its key as PEM files in a temporary directory, and returns
// their paths and a signer for them.
func KeyPairFiles(t testing.TB, name string) (certFile, keyFile string, s *pades.Signer) {
	t.Helper()
	cert, key, err := pades.SelfSigned(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pades.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pades.EncodeCertificates(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err = pades.NewSigner(cert, key); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, s
}

// Trust returns the certificates of signers.
func Trust(signers ...*pades.Signer) []*x509.Certificate {
	out := make([]*x509.Certificate, len(signers))
	for i, s := range signers {
		out[i] = s.Certificate()
	}
	return out
}

// Text returns the text layer of doc via pdftotext, or skips the test when
// pdftotext is not installed.
func Text(t testing.TB, doc []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Skip("pdftotext not installed (apt-get install poppler-utils); cannot check the text layer")
	}
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}
