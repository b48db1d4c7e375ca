package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/afteraction/afteraction/pkg/bus"
)

var httpClient = &http.Client{Timeout: 30 * time.Second}

// call sends a request with an optional JSON body and bearer token and decodes
// a JSON answer into out (when out is not nil). A non-2xx answer is an error
// carrying the problem body.
func call(ctx context.Context, method, url, token string, body, out any) error {
	var rd io.Reader
	contentType := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	return send(ctx, method, url, token, contentType, rd, out)
}

// callRaw POSTs body as a PDF and decodes the JSON answer into out.
func callRaw(ctx context.Context, url, token string, body []byte, out any) error {
	return send(ctx, http.MethodPost, url, token, "application/pdf", bytes.NewReader(body), out)
}

// send does the request of call and callRaw. out may be a *[]byte for the raw answer.
func send(ctx context.Context, method, url, token, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	if b, ok := out.(*[]byte); ok {
		*b = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, url, err)
	}
	return nil
}

func getJSON(ctx context.Context, url, token string, out any) error {
	return call(ctx, http.MethodGet, url, token, nil, out)
}

// poll calls fn every 50ms until it returns true, an error, or timeout passes.
func poll(ctx context.Context, what string, timeout time.Duration, fn func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := fn()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: gave up after %v", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cliNATSOptions is the identity the CLI's NATS commands connect with:
// NATS_CREDS, or NATS_USER and NATS_PASSWORD (in production, the operator user
// of deploy/nats/permissions.conf).
func cliNATSOptions() bus.Options {
	return bus.Options{User: os.Getenv("NATS_USER"), Password: os.Getenv("NATS_PASSWORD"), CredsFile: os.Getenv("NATS_CREDS")}
}
