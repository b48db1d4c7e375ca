// Package pades signs report PDFs inside the file and verifies such
// signatures offline.
//
// A signature is an ISO 32000-1 §12.8 signature dictionary appended to the PDF
// as an incremental update: /ByteRange names every byte of the file except the
// hex string /Contents, which holds a detached CMS SignedData (RFC 5652) over
// those bytes with the signer's X.509 certificate, a signing-certificate-v2
// attribute and SHA-256 (/SubFilter /adbe.pkcs7.detached, as PAdES part 2
// describes it). The signature is a certification signature that permits no
// changes (DocMDP P=1), so any PDF reader, Poppler's pdfsig and Verify below
// check it with no afteraction server.
//
// Signing uses github.com/digitorus/pdfsign (BSD-2-Clause) for the
// incremental update and github.com/digitorus/pkcs7 (MIT) for the CMS.
// Verify is written here on top of pkcs7 alone: it needs no network, no PDF
// object parser and no trust store other than the certificates it is given.
package pades

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/digitorus/pdf"
	"github.com/digitorus/pdfsign/sign"
)

// Signer signs PDFs with one certificate and its private key.
type Signer struct {
	cert  *x509.Certificate
	chain []*x509.Certificate // cert first, then its issuers (may be just cert)
	key   crypto.Signer
}

// NewSigner returns a signer for cert and key. The key must be ECDSA P-256 or
// RSA of at least 2048 bits (what PDF readers verify) and must match cert's
// public key. chain, if given, are the issuers of cert, nearest first; they
// are embedded so readers can build the path to a root they trust.
func NewSigner(cert *x509.Certificate, key crypto.Signer, chain ...*x509.Certificate) (*Signer, error) {
	if cert == nil || key == nil {
		return nil, errors.New("signing certificate: certificate and key are both required")
	}
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing key: ECDSA curve %s, want P-256", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("signing key: RSA %d bits, want at least 2048", k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("signing key: %T, want ECDSA P-256 or RSA", k)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return nil, errors.New("signing key: the private key does not match the certificate's public key")
	}
	return &Signer{cert: cert, chain: append([]*x509.Certificate{cert}, chain...), key: key}, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// Certificate returns the signing certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// Fingerprint returns the signing certificate's SHA-256 fingerprint.
func (s *Signer) Fingerprint() string { return Fingerprint(s.cert) }

// Fingerprint is the lower-case hex SHA-256 of a certificate's DER encoding,
// as `openssl x509 -fingerprint -sha256` prints it (without the colons).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Info describes a signature in the signature dictionary.
type Info struct {
	Name     string
	Reason   string
	Location string
	// Date is the signing time written as /M.
	Date time.Time
}

// Sign returns doc with a certification signature appended. It fails when doc
// is not a PDF the signer can parse.
func (s *Signer) Sign(doc []byte, info Info) ([]byte, error) {
	rdr, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		return nil, fmt.Errorf("sign pdf: parse: %w", err)
	}
	var out bytes.Buffer
	out.Grow(len(doc) + 8<<10)
	err = sign.Sign(bytes.NewReader(doc), &out, rdr, int64(len(doc)), sign.SignData{
		Signature: sign.SignDataSignature{
			Info: sign.SignDataSignatureInfo{Name: info.Name, Reason: info.Reason, Location: info.Location,
				Date: info.Date},
			CertType:   sign.CertificationSignature,
			DocMDPPerm: sign.DoNotAllowAnyChangesPerms,
		},
		Signer:            s.key,
		DigestAlgorithm:   crypto.SHA256,
		Certificate:       s.cert,
		CertificateChains: [][]*x509.Certificate{s.chain},
	})
	if err != nil {
		return nil, fmt.Errorf("sign pdf: %w", err)
	}
	return out.Bytes(), nil
}

// SelfSigned returns a new ECDSA P-256 key and a self-signed certificate for
// it, valid from an hour before now for ten years, usable for document
// signing. It is what development and the demo sign with.
func SelfSigned(commonName string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate signing key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"afteraction"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidDocumentSigning},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, key, nil
}

// EncodeCertificates returns certs as concatenated PEM CERTIFICATE blocks.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// EncodeKey returns key as a PEM PKCS #8 PRIVATE KEY block.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCertificates decodes every PEM CERTIFICATE block of data, or data as
// one DER certificate. It fails when there is none or one does not parse.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		c, err := x509.ParseCertificate(bytes.TrimSpace(data))
		if err != nil {
			return nil, errors.New("no PEM CERTIFICATE block and not a DER certificate")
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// ParseKey decodes a PEM private key: PKCS #8 ("PRIVATE KEY"), SEC 1 ("EC
// PRIVATE KEY") or PKCS #1 ("RSA PRIVATE KEY").
func ParseKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key block")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", block.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: %T cannot sign", block.Type, key)
		}
		return s, nil
	}
}
