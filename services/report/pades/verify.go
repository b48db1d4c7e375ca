package pades

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/digitorus/pkcs7"
)

// oidDocumentSigning is the document-signing extended key usage (RFC 9336).
var oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}

// Status is the outcome of Verify.
type Status int

// The outcomes of Verify, worst last for callers that only compare.
const (
	// Authentic: the signature covers every byte of the file, its digest and
	// signature verify, and the signer is one of the trusted certificates.
	Authentic Status = iota
	// Altered: the file carries a signature, but the bytes it covers changed,
	// bytes were added after it, or the signature itself was damaged.
	Altered
	// UnknownSigner: the file is intact under its signature, but the signer is
	// none of the trusted certificates; or the file carries no signature.
	UnknownSigner
)

func (s Status) String() string {
	switch s {
	case Authentic:
		return "AUTHENTIC"
	case Altered:
		return "ALTERED"
	default:
		return "UNKNOWN SIGNER"
	}
}

// Result is what Verify found.
type Result struct {
	Status Status
	// Reason says why, in a sentence fit for a person.
	Reason string
	// Signer is the certificate the CMS names (nil when there is none).
	Signer *x509.Certificate
	// Fingerprint is Signer's SHA-256 fingerprint.
	Fingerprint string
	// SignedAt is the signing time the signer claims (zero when absent).
	SignedAt time.Time
	// ByteRange is the signature's /ByteRange.
	ByteRange [4]int64
}

var byteRangeRE = regexp.MustCompile(`/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`)

// Verify checks the signature embedded in doc against trusted. Only a
// signature whose /ByteRange covers the whole file except its own /Contents
// counts: bytes appended after signing make the file Altered. The CMS digest
// must equal the SHA-256 of the covered bytes, the CMS signature must verify
// with the embedded certificate, and that certificate's public key must be
// one of trusted's. Verify needs no network and never trusts the certificate
// the file carries by itself.
func Verify(doc []byte, trusted []*x509.Certificate) Result {
	matches := byteRangeRE.FindAllSubmatchIndex(doc, -1)
	if len(matches) == 0 {
		return Result{Status: UnknownSigner, Reason: "the file carries no signature"}
	}
	var br [4]int64
	found := false
	for _, m := range matches {
		var cand [4]int64
		for i := range cand {
			cand[i], _ = strconv.ParseInt(string(doc[m[2+2*i]:m[3+2*i]]), 10, 64)
		}
		if cand[0] == 0 && cand[1] > 0 && cand[2] > cand[1] && cand[2]+cand[3] == int64(len(doc)) {
			br, found = cand, true
		}
	}
	if !found {
		return Result{Status: Altered, Reason: "no signature covers the whole file: bytes were added or removed after signing"}
	}
	res := Result{ByteRange: br}
	hole := doc[br[1]:br[2]]
	if len(hole) < 2 || hole[0] != '<' || hole[len(hole)-1] != '>' {
		res.Status, res.Reason = Altered, "the signature's /ByteRange does not frame its /Contents"
		return res
	}
	der, err := hex.DecodeString(string(hole[1 : len(hole)-1]))
	if err != nil {
		res.Status, res.Reason = Altered, "the signature's /Contents is not a hex string: "+err.Error()
		return res
	}
	var outer asn1.RawValue
	rest, err := asn1.Unmarshal(der, &outer)
	if err != nil || len(bytes.Trim(rest, "\x00")) != 0 {
		res.Status, res.Reason = Altered, "the signature's /Contents is not one DER CMS object"
		return res
	}
	p7, err := pkcs7.Parse(outer.FullBytes)
	if err != nil {
		res.Status, res.Reason = Altered, "the signature's CMS does not parse: "+err.Error()
		return res
	}
	res.Signer = p7.GetOnlySigner()
	if res.Signer == nil {
		res.Status, res.Reason = Altered, "the signature's CMS names no single signer certificate"
		return res
	}
	res.Fingerprint = Fingerprint(res.Signer)
	_ = p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeSigningTime, &res.SignedAt)

	signed := make([]byte, 0, br[1]+br[3])
	signed = append(append(signed, doc[:br[1]]...), doc[br[2]:]...)
	p7.Content = signed
	if err := p7.Verify(); err != nil {
		var mismatch *pkcs7.MessageDigestMismatchError
		if errors.As(err, &mismatch) {
			res.Status, res.Reason = Altered, "digest mismatch: the signed bytes were changed after signing"
		} else {
			res.Status, res.Reason = Altered, "the signature does not verify: "+err.Error()
		}
		return res
	}
	for _, c := range trusted {
		if samePublicKey(c.PublicKey, res.Signer.PublicKey) {
			res.Status = Authentic
			res.Reason = fmt.Sprintf("signed by %q (certificate %s), unaltered since", res.Signer.Subject.CommonName, res.Fingerprint)
			return res
		}
	}
	res.Status = UnknownSigner
	res.Reason = fmt.Sprintf("intact, but signed by %q (certificate %s), which is not a trusted certificate", res.Signer.Subject.CommonName, res.Fingerprint)
	return res
}
