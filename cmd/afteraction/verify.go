package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/afteraction/afteraction/services/report/custody"
	"github.com/afteraction/afteraction/services/report/pades"
)

// Exit codes of `afteraction verify`.
const (
	exitAuthentic     = 0
	exitAltered       = 1
	exitUnknownSigner = 2
	exitNotPublished  = 3
)

// exitError ends the CLI with a specific exit code after printing its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// verifyAnswer is the report service's POST /v1/verify answer.
type verifyAnswer struct {
	Valid       bool   `json:"valid"`
	Reason      string `json:"reason"`
	ReportID    string `json:"report_id"`
	Version     int    `json:"version"`
	PDFSHA256   string `json:"pdf_sha256"`
	DataSHA256  string `json:"data_sha256"`
	KeyID       string `json:"key_id"`
	PublishedAt string `json:"published_at"`
}

// certFlags collects repeated --cert values.
type certFlags []string

func (c *certFlags) String() string     { return strings.Join(*c, ",") }
func (c *certFlags) Set(v string) error { *c = append(*c, v); return nil }

// runVerify checks the signature inside a report PDF against pinned
// certificates, with no server: AUTHENTIC (exit 0), ALTERED (exit 1) or
// UNKNOWN SIGNER (exit 2, also for an unsigned file). With --api it then asks
// the report service whether the file is a published version (exit 3 if not).
func runVerify(ctx context.Context, args []string) error {
	return verifyCommand(ctx, args, os.Stdout)
}

func verifyCommand(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var certFiles certFlags
	fs.Var(&certFiles, "cert", "PEM file of a trusted signing certificate (repeat, or a bundle, for earlier rotations); default $AFTERACTION_REPORT_CERT")
	api := fs.String("api", "", "also confirm with this report service (e.g. http://127.0.0.1:8083) that the file is a published version")
	token := fs.String("token", envOr("AFTERACTION_TOKEN", "dev-admin-token"), "bearer token for --api (compliance role)")
	custodyFile := fs.String("custody", "", "instead of a PDF, check a custody log export (GET /v1/reports/{id}/custody) and say where its chain breaks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *custodyFile != "" {
		return verifyCustody(*custodyFile, stdout)
	}
	if len(certFiles) == 0 && os.Getenv("AFTERACTION_REPORT_CERT") != "" {
		certFiles = append(certFiles, os.Getenv("AFTERACTION_REPORT_CERT"))
	}
	if fs.NArg() != 1 || len(certFiles) == 0 {
		return errors.New("usage: afteraction verify --cert certificate.pem [--cert earlier.pem] [--api URL] <report.pdf>\n       afteraction verify --custody custody.json")
	}
	var trusted []*x509.Certificate
	for _, f := range certFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--cert: %w", err)
		}
		certs, err := pades.ParseCertificates(b)
		if err != nil {
			return fmt.Errorf("--cert %s: %w", f, err)
		}
		trusted = append(trusted, certs...)
	}
	doc, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(doc)
	fmt.Fprintf(stdout, "file         %s\nsha256       %s\n", fs.Arg(0), hex.EncodeToString(sum[:]))
	res := pades.Verify(doc, trusted)
	if res.Signer != nil {
		fmt.Fprintf(stdout, "signed by    %s\ncertificate  sha256 %s\n", res.Signer.Subject, res.Fingerprint)
	}
	if !res.SignedAt.IsZero() {
		fmt.Fprintf(stdout, "signed at    %s (the signer's clock)\n", res.SignedAt.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	verdict := res.Status.String() + ": " + res.Reason
	switch res.Status {
	case pades.Altered:
		return &exitError{exitAltered, verdict}
	case pades.UnknownSigner:
		return &exitError{exitUnknownSigner, verdict}
	}
	fmt.Fprintf(stdout, "result       %s\n", verdict)
	if *api == "" {
		return nil
	}
	var v verifyAnswer
	if err := callRaw(ctx, strings.TrimRight(*api, "/")+"/v1/verify", *token, doc, &v); err != nil {
		return err
	}
	if !v.Valid || v.PDFSHA256 != hex.EncodeToString(sum[:]) {
		return &exitError{exitNotPublished, "NOT PUBLISHED: the signature is authentic, but the service does not vouch for this file: " + v.Reason}
	}
	fmt.Fprintf(stdout, "published    report %s version %d at %s (data sha256 %s)\n", v.ReportID, v.Version, v.PublishedAt, v.DataSHA256)
	return nil
}

// verifyCustody recomputes the hash chain of a custody export: INTACT (exit
// 0), or BROKEN with the first entry that does not follow (exit 1).
func verifyCustody(path string, stdout io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var export struct {
		ReportID string          `json:"report_id"`
		Entries  []custody.Entry `json:"entries"`
	}
	if err := json.Unmarshal(b, &export); err != nil {
		return fmt.Errorf("custody export %s: %w", path, err)
	}
	c := custody.Verify(export.Entries)
	fmt.Fprintf(stdout, "custody log  report %s, %d entries\n", export.ReportID, c.Entries)
	if !c.Valid {
		return &exitError{exitAltered, fmt.Sprintf("BROKEN at entry %d: %s", c.BrokenAt, c.Reason)}
	}
	fmt.Fprintf(stdout, "result       INTACT: %s\n", c.Reason)
	return nil
}

// verifyOffline checks the signature inside doc against the PEM certificate(s)
// certPEM and returns the verdict line; an error when the verdict is not
// AUTHENTIC.
func verifyOffline(doc, certPEM []byte) (string, error) {
	certs, err := pades.ParseCertificates(certPEM)
	if err != nil {
		return "", fmt.Errorf("signing certificate: %w", err)
	}
	res := pades.Verify(doc, certs)
	verdict := res.Status.String() + ": " + res.Reason
	if res.Status != pades.Authentic {
		return "", errors.New("the report PDF does not verify offline: " + verdict)
	}
	return verdict, nil
}
