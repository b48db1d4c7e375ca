package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
)

// Manifest is the byte string a report version's Ed25519 signature covers.
func Manifest(reportID string, version int, pdfSHA256, dataSHA256 string) []byte {
	return []byte("afteraction-report-v1\n" + reportID + "\n" + strconv.Itoa(version) + "\n" + pdfSHA256 + "\n" + dataSHA256 + "\n")
}

type verifyAnswer struct {
	Valid       bool   `json:"valid"`
	Reason      string `json:"reason"`
	ReportID    string `json:"report_id"`
	Version     int    `json:"version"`
	PDFSHA256   string `json:"pdf_sha256"`
	DataSHA256  string `json:"data_sha256"`
	KeyID       string `json:"key_id"`
	Signature   string `json:"signature"`
	PublishedAt string `json:"published_at"`
}

func runVerify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	api := fs.String("api", envOr("AFTERACTION_REPORT_URL", "http://127.0.0.1:8083"), "base URL of the report service")
	token := fs.String("token", envOr("AFTERACTION_TOKEN", "dev-admin-token"), "bearer token (compliance role)")
	pub := fs.String("public-key", os.Getenv("AFTERACTION_REPORT_PUBLIC_KEY"),
		"base64 Ed25519 public key to check the signature with locally (pin it; do not trust the server's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: afteraction verify [--api URL] [--public-key KEY] <report.pdf>")
	}
	pdf, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(pdf)
	digest := hex.EncodeToString(sum[:])
	var v verifyAnswer
	if err := callRaw(ctx, *api+"/v1/verify", *token, pdf, &v); err != nil {
		return err
	}
	fmt.Printf("file        %s\nsha256      %s\n", fs.Arg(0), digest)
	if !v.Valid {
		return fmt.Errorf("NOT an authentic afteraction report version: %s", v.Reason)
	}
	if v.PDFSHA256 != digest {
		return fmt.Errorf("the service vouched for digest %s, but the file's is %s", v.PDFSHA256, digest)
	}
	fmt.Printf("report      %s version %d (published %s)\ndata sha256 %s\nsigned by   key %s\n",
		v.ReportID, v.Version, v.PublishedAt, v.DataSHA256, v.KeyID)
	if *pub != "" {
		key, err := base64.StdEncoding.DecodeString(*pub)
		if err != nil || len(key) != ed25519.PublicKeySize {
			return errors.New("--public-key: want a base64 Ed25519 public key (32 bytes)")
		}
		sig, err := base64.StdEncoding.DecodeString(v.Signature)
		if err != nil || !ed25519.Verify(key, Manifest(v.ReportID, v.Version, digest, v.DataSHA256), sig) {
			return errors.New("the signature does NOT verify with the pinned public key")
		}
		fmt.Println("signature   verified locally with the pinned public key")
	}
	fmt.Println("result      AUTHENTIC: this file is exactly a published version")
	return nil
}
