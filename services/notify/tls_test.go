package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/services/notify/mailpit"
)

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool trusting the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// STARTTLS and implicit TLS against a mailpit that requires them, with
// authentication; the server's certificate is verified, and a server that
// does not offer STARTTLS is refused rather than spoken to in clear.
func TestSMTPOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	tlsConfig := &tls.Config{ServerName: "127.0.0.1", RootCAs: roots, MinVersion: tls.VersionTLS12}
	mailTo := func(to string) Mail {
		return Mail{From: mail.Address{Address: "afteraction@ok.example"}, To: mail.Address{Name: "T", Address: to},
			Subject: "over TLS", Text: "t", HTML: "<p>h</p>", MessageID: to, Date: time.Now()}
	}
	for _, c := range []struct {
		mode TLSMode
		opts mailpit.Options
	}{
		{TLSStartTLS, mailpit.Options{TLSCert: certFile, TLSKey: keyFile, RequireSTARTTLS: true}},
		{TLSImplicit, mailpit.Options{TLSCert: certFile, TLSKey: keyFile, RequireTLS: true}},
	} {
		t.Run(string(c.mode), func(t *testing.T) {
			t.Parallel()
			mp := startMailpit(t, c.opts)
			smtp := &SMTP{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: c.mode, Username: "user", Password: "secret",
				Timeout: 10 * time.Second, TLSConfig: tlsConfig}
			if err := smtp.Send(context.Background(), mailTo(string(c.mode)+"@ok.example")); err != nil {
				t.Fatal(err)
			}
			list, err := mp.Messages(context.Background())
			if err != nil || len(list) != 1 || list[0].To[0].Address != string(c.mode)+"@ok.example" {
				t.Fatalf("mailpit holds %+v (%v)", list, err)
			}
			untrusted := *smtp
			untrusted.TLSConfig = &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
			if err := untrusted.Send(context.Background(), mailTo("x@ok.example")); err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("an untrusted certificate was accepted: %v", err)
			}
		})
	}
	t.Run("no STARTTLS offered", func(t *testing.T) {
		t.Parallel()
		mp := startMailpit(t, mailpit.Options{})
		smtp := &SMTP{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: TLSStartTLS, Timeout: 10 * time.Second, TLSConfig: tlsConfig}
		if err := smtp.Send(context.Background(), mailTo("y@ok.example")); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("sent without the STARTTLS that was asked for: %v", err)
		}
	})
}
