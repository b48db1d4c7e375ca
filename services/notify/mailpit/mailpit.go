// Package mailpit runs a Mailpit (github.com/axllent/mailpit) SMTP server
// with its web UI and HTTP API on loopback ports, and reads what arrived:
// the real mail server of notify's tests and of `afteraction dev` and
// `make demo`. The mailpit binary must be on PATH or in $(go env GOPATH)/bin
// (`go install github.com/axllent/mailpit@v1.33.1`).
package mailpit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// ErrNotInstalled is returned when no mailpit binary can be found.
var ErrNotInstalled = errors.New("mailpit is not installed (go install github.com/axllent/mailpit@v1.33.1)")

// Binary returns the path of the mailpit binary: on PATH, or else in
// $GOPATH/bin (default ~/go/bin), or ErrNotInstalled.
func Binary() (string, error) {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", ErrNotInstalled
		}
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(filepath.SplitList(gopath)[0], "bin", "mailpit")
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return p, nil
	}
	return "", ErrNotInstalled
}

// Options says where a Server listens and keeps its messages.
type Options struct {
	// SMTPPort and HTTPPort on 127.0.0.1; 0 picks a free port.
	SMTPPort, HTTPPort int
	// Dir holds the message database (mailpit.db); it survives a restart.
	Dir string
	// AllowedRecipients, when set, is a regular expression: any other
	// recipient is refused with an SMTP 5xx (a "mailbox refused").
	AllowedRecipients string
	// TLSCert and TLSKey (PEM files) enable TLS on the SMTP port: STARTTLS,
	// required with RequireSTARTTLS, or implicit TLS with RequireTLS.
	TLSCert, TLSKey             string
	RequireSTARTTLS, RequireTLS bool
	// Log receives mailpit's output (default: discarded).
	Log io.Writer
}

// Server is a running mailpit process.
type Server struct {
	opts     Options
	bin      string
	cmd      *exec.Cmd
	done     chan struct{}
	SMTPPort int
	// WebURL is the web UI and API base, http://127.0.0.1:<port>.
	WebURL string
}

// Start starts mailpit and returns once its API answers.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if o.SMTPPort == 0 {
		if o.SMTPPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	if o.HTTPPort == 0 {
		if o.HTTPPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &Server{opts: o, bin: bin, SMTPPort: o.SMTPPort, WebURL: "http://127.0.0.1:" + strconv.Itoa(o.HTTPPort)}
	return s, s.start(ctx)
}

func (s *Server) start(ctx context.Context) error {
	args := []string{
		"--smtp", "127.0.0.1:" + strconv.Itoa(s.opts.SMTPPort),
		"--listen", "127.0.0.1:" + strconv.Itoa(s.opts.HTTPPort),
		"--database", filepath.Join(s.opts.Dir, "mailpit.db"),
		"--disable-version-check", "--smtp-auth-accept-any", "--smtp-disable-rdns", "--quiet",
	}
	if !s.opts.RequireSTARTTLS && !s.opts.RequireTLS {
		args = append(args, "--smtp-auth-allow-insecure") // mailpit refuses it together with required TLS
	}
	if s.opts.TLSCert != "" {
		args = append(args, "--smtp-tls-cert", s.opts.TLSCert, "--smtp-tls-key", s.opts.TLSKey)
	}
	if s.opts.RequireSTARTTLS {
		args = append(args, "--smtp-require-starttls")
	}
	if s.opts.RequireTLS {
		args = append(args, "--smtp-require-tls")
	}
	if s.opts.AllowedRecipients != "" {
		args = append(args, "--smtp-allowed-recipients", s.opts.AllowedRecipients)
	}
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.opts.Log, s.opts.Log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start mailpit: %w", err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(s.WebURL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && s.smtpUp() {
				return nil
			}
		}
		select {
		case <-s.done:
			return errors.New("mailpit exited during start-up")
		case <-ctx.Done():
			s.Stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return errors.New("mailpit not ready after 30s")
		}
	}
}

func (s *Server) smtpUp() bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.SMTPPort), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stop kills mailpit (as a crash would) and waits for it to exit. It is safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts mailpit again on the same ports with the same messages.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx)
}

// Address is a mailbox as the API reports it.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Summary is one message in the list.
type Summary struct {
	ID          string    `json:"ID"`
	MessageID   string    `json:"MessageID"`
	From        Address   `json:"From"`
	To          []Address `json:"To"`
	Subject     string    `json:"Subject"`
	Created     time.Time `json:"Created"`
	Attachments int       `json:"Attachments"`
}

// Attachment is a part of a message the API lists as an attachment.
type Attachment struct {
	PartID      string `json:"PartID"`
	FileName    string `json:"FileName"`
	ContentType string `json:"ContentType"`
}

// Message is one message with its bodies.
type Message struct {
	ID          string       `json:"ID"`
	MessageID   string       `json:"MessageID"`
	From        Address      `json:"From"`
	To          []Address    `json:"To"`
	Subject     string       `json:"Subject"`
	Text        string       `json:"Text"`
	HTML        string       `json:"HTML"`
	Attachments []Attachment `json:"Attachments"`
	Inline      []Attachment `json:"Inline"`
}

// Messages lists every stored message, newest first.
func (s *Server) Messages(ctx context.Context) ([]Summary, error) {
	var out struct {
		Messages []Summary `json:"messages"`
	}
	err := s.get(ctx, "/api/v1/messages?limit=1000", &out)
	return out.Messages, err
}

// Message returns one message by its mailpit ID.
func (s *Server) Message(ctx context.Context, id string) (Message, error) {
	var m Message
	err := s.get(ctx, "/api/v1/message/"+url.PathEscape(id), &m)
	return m, err
}

// Part returns the raw content of a part (e.g. an attachment) of a message.
func (s *Server) Part(ctx context.Context, id, partID string) ([]byte, error) {
	return s.raw(ctx, "/api/v1/message/"+url.PathEscape(id)+"/part/"+url.PathEscape(partID))
}

// Headers returns the headers of a message as the API parses them.
func (s *Server) Headers(ctx context.Context, id string) (map[string][]string, error) {
	var h map[string][]string
	err := s.get(ctx, "/api/v1/message/"+url.PathEscape(id)+"/headers", &h)
	return h, err
}

// Raw returns the message exactly as received.
func (s *Server) Raw(ctx context.Context, id string) ([]byte, error) {
	return s.raw(ctx, "/api/v1/message/"+url.PathEscape(id)+"/raw")
}

func (s *Server) get(ctx context.Context, path string, v any) error {
	b, err := s.raw(ctx, path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (s *Server) raw(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.WebURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mailpit %s: %s", path, resp.Status)
	}
	return b, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
