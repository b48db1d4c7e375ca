package report

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/afteraction/afteraction/services/report/pades"
)

// Signer signs report manifests with one Ed25519 key.
type Signer struct {
	priv  ed25519.PrivateKey
	keyID string
}

// NewSigner returns a signer for a 32-byte Ed25519 seed.
func NewSigner(seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key: want a %d-byte Ed25519 seed, got %d bytes", ed25519.SeedSize, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &Signer{priv: priv, keyID: KeyIDOf(priv.Public().(ed25519.PublicKey))}, nil
}

// KeyIDOf names a public key: the first 16 hex digits of its SHA-256.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:16]
}

// DecodeSeed decodes a base64 (standard or URL alphabet, padded or not) seed.
func DecodeSeed(s string) ([]byte, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key: want a %d-byte Ed25519 seed, got %d bytes", ed25519.SeedSize, len(b))
	}
	return b, nil
}

// DecodePublicKey decodes a base64 (standard or URL alphabet, padded or not)
// Ed25519 public key, as GET /v1/keys shows it.
func DecodePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key: want a %d-byte Ed25519 public key, got %d bytes", ed25519.PublicKeySize, len(b))
	}
	return b, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// TrustedKeys are the public keys whose signatures Verify accepts, by key id.
// A key recorded in the database but absent here proves nothing: whoever can
// write the report schema could have recorded it.
type TrustedKeys map[string]ed25519.PublicKey

// NewTrustedKeys trusts current (the service's own key) and others (keys of
// earlier rotations).
func NewTrustedKeys(current ed25519.PublicKey, others ...ed25519.PublicKey) TrustedKeys {
	t := TrustedKeys{KeyIDOf(current): current}
	for _, pub := range others {
		t[KeyIDOf(pub)] = pub
	}
	return t
}

// Sign returns the Ed25519 signature of manifest.
func (s *Signer) Sign(manifest []byte) []byte { return ed25519.Sign(s.priv, manifest) }

// KeyID names the signer's public key.
func (s *Signer) KeyID() string { return s.keyID }

// Public returns the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// DevSigner returns the development signer persisted in the store, creating
// a random seed on first use.
func DevSigner(ctx context.Context, store Store) (*Signer, error) {
	fresh := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("generate dev signing key: %w", err)
	}
	seed, err := store.DevSeed(ctx, fresh)
	if err != nil {
		return nil, err
	}
	return NewSigner(seed)
}

// PDFSigning is the certificate that signs inside every PDF and the
// certificates whose signatures verify.
type PDFSigning struct {
	Signer *pades.Signer
	// Trusted is the signer's certificate followed by those of earlier
	// rotations (REPORT_TRUSTED_CERTS_FILE).
	Trusted []*x509.Certificate
}

// LoadPDFSigner reads a PEM certificate (followed by its issuers, if any) and
// a PEM private key from the named files.
func LoadPDFSigner(certFile, keyFile string) (*pades.Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("REPORT_CERT_FILE: %w", err)
	}
	certs, err := pades.ParseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("REPORT_CERT_FILE %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("REPORT_CERT_KEY_FILE: %w", err)
	}
	key, err := pades.ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("REPORT_CERT_KEY_FILE %s: %w", keyFile, err)
	}
	s, err := pades.NewSigner(certs[0], key, certs[1:]...)
	if err != nil {
		return nil, fmt.Errorf("REPORT_CERT_FILE and REPORT_CERT_KEY_FILE: %w", err)
	}
	return s, nil
}

// DevPDFSigner returns the development certificate persisted in the store: a
// self-signed ECDSA P-256 certificate created on first use and kept, so every
// report of a development database verifies with one certificate.
func DevPDFSigner(ctx context.Context, store Store, now time.Time) (*pades.Signer, error) {
	cert, key, err := pades.SelfSigned("afteraction development report signing", now)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode dev signing key: %w", err)
	}
	certDER, keyDER, err := store.DevCertificate(ctx, cert.Raw, keyDER)
	if err != nil {
		return nil, err
	}
	if cert, err = x509.ParseCertificate(certDER); err != nil {
		return nil, fmt.Errorf("dev signing certificate: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("dev signing key: %w", err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dev signing key: %T cannot sign", parsed)
	}
	return pades.NewSigner(cert, signer)
}
