package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
)

// Mail is one message to one person. Every text may come from untrusted
// input: Build keeps CR, LF and other control characters out of every header
// and encodes what is not ASCII; HTML is escaped by the templates that render it.
type Mail struct {
	From      mail.Address
	To        mail.Address
	Subject   string
	Text      string
	HTML      string
	ICS       string // an iCalendar object, attached when not empty
	ICSMethod string // REQUEST or CANCEL
	MessageID string // without angle brackets
	Date      time.Time
}

// Build renders m as an RFC 5322 message with MIME (RFC 2045-2049) bodies:
// multipart/alternative of text/plain and text/html (quoted-printable, UTF-8),
// and with an invitation, the text/calendar part inside the alternative (as
// calendar clients expect) plus an invite.ics attachment, in a multipart/mixed.
func (m Mail) Build() ([]byte, error) {
	if !events.ValidEmail(m.To.Address) {
		return nil, fmt.Errorf("recipient %q: not a valid e-mail address", m.To.Address)
	}
	if !events.ValidEmail(m.From.Address) {
		return nil, fmt.Errorf("sender %q: not a valid e-mail address", m.From.Address)
	}
	var alt bytes.Buffer
	aw := multipart.NewWriter(&alt)
	if err := writeQP(aw, "text/plain; charset=utf-8", m.Text); err != nil {
		return nil, err
	}
	if err := writeQP(aw, "text/html; charset=utf-8", m.HTML); err != nil {
		return nil, err
	}
	method := "REQUEST"
	if m.ICSMethod == "CANCEL" {
		method = "CANCEL"
	}
	if m.ICS != "" {
		if err := writeBase64(aw, textproto.MIMEHeader{
			"Content-Type": {"text/calendar; charset=utf-8; method=" + method},
		}, m.ICS); err != nil {
			return nil, err
		}
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}

	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", address(m.From))
	header("To", address(m.To))
	header("Subject", encodeHeader(m.Subject))
	header("Date", m.Date.Format(time.RFC1123Z))
	header("Message-ID", "<"+headerText(m.MessageID)+">")
	header("MIME-Version", "1.0")
	header("Auto-Submitted", "auto-generated")
	if m.ICS == "" {
		header("Content-Type", `multipart/alternative; boundary="`+aw.Boundary()+`"`)
		b.WriteString("\r\n")
		b.Write(alt.Bytes())
		return b.Bytes(), nil
	}
	var mixed bytes.Buffer
	mw := multipart.NewWriter(&mixed)
	part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {`multipart/alternative; boundary="` + aw.Boundary() + `"`}})
	if err != nil {
		return nil, err
	}
	if _, err := part.Write(alt.Bytes()); err != nil {
		return nil, err
	}
	if err := writeBase64(mw, textproto.MIMEHeader{
		"Content-Type":        {`application/ics; name="invite.ics"`},
		"Content-Disposition": {`attachment; filename="invite.ics"`},
	}, m.ICS); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	header("Content-Type", `multipart/mixed; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	b.Write(mixed.Bytes())
	return b.Bytes(), nil
}

func writeQP(w *multipart.Writer, contentType, body string) error {
	part, err := w.CreatePart(textproto.MIMEHeader{"Content-Type": {contentType}, "Content-Transfer-Encoding": {"quoted-printable"}})
	if err != nil {
		return err
	}
	qp := quotedprintable.NewWriter(part)
	if _, err := qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))); err != nil {
		return err
	}
	return qp.Close()
}

func writeBase64(w *multipart.Writer, h textproto.MIMEHeader, body string) error {
	h.Set("Content-Transfer-Encoding", "base64")
	part, err := w.CreatePart(h)
	if err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString([]byte(body))
	for len(enc) > 76 {
		if _, err := part.Write([]byte(enc[:76] + "\r\n")); err != nil {
			return err
		}
		enc = enc[76:]
	}
	_, err = part.Write([]byte(enc + "\r\n"))
	return err
}

// headerText makes s safe for a header: every control character (CR and LF
// included, the means of header injection) becomes a space, runs of spaces
// collapse, and it is cut to 300 runes.
func headerText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// encodeHeader is headerText, RFC 2047-encoded when it is not plain ASCII.
func encodeHeader(s string) string { return mime.QEncoding.Encode("utf-8", headerText(s)) }

// address renders a mailbox with its display name cleaned and encoded
// (net/mail quotes specials and encodes non-ASCII names).
func address(a mail.Address) string {
	return (&mail.Address{Name: headerText(a.Name), Address: a.Address}).String()
}

// TLSMode is how the SMTP connection is secured.
type TLSMode string

// TLS modes: none (plain, e.g. a local relay), starttls (upgrade on port 587
// or 25; refused if the server does not offer it) or tls (implicit TLS, port 465).
const (
	TLSNone     TLSMode = "none"
	TLSStartTLS TLSMode = "starttls"
	TLSImplicit TLSMode = "tls"
)

// SMTP sends mail through one SMTP server.
type SMTP struct {
	Host     string
	Port     int
	TLS      TLSMode
	Username string
	Password string
	// HELO is the name the client greets with (default "localhost").
	HELO string
	// Timeout bounds one whole SMTP transaction (default 60s).
	Timeout time.Duration
	// TLSConfig, when set, replaces the default (verify the server's certificate for Host).
	TLSConfig *tls.Config
}

// Send delivers the message to m.To in one SMTP transaction. The error is
// permanent (bus.IsPermanent) when the server refuses the recipient or the
// message with a 5xx reply, and for a message that cannot be built; anything
// else (connection refused, timeouts, 4xx, refusals before the recipient was
// named, such as a 535 for bad credentials) is temporary and worth a retry.
func (c *SMTP) Send(ctx context.Context, m Mail) error {
	msg, err := m.Build()
	if err != nil {
		return bus.Permanent(err)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	tlsConfig := c.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
	}
	var conn net.Conn
	dialer := &net.Dialer{}
	if c.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	client, err := smtp.NewClient(conn, c.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting from %s: %w", addr, err)
	}
	defer client.Close()
	if err := client.Hello(orDefault(c.HELO, "localhost")); err != nil {
		return fmt.Errorf("smtp hello: %w", err)
	}
	if c.TLS == TLSStartTLS {
		if ok, _ := client.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp server %s does not offer STARTTLS", addr)
		}
		if err := client.StartTLS(tlsConfig); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if c.Username != "" {
		if err := client.Auth(smtp.PlainAuth("", c.Username, c.Password, c.Host)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := client.Mail(m.From.Address); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	if err := client.Rcpt(m.To.Address); err != nil {
		return refused("smtp RCPT TO", err)
	}
	w, err := client.Data()
	if err != nil {
		return refused("smtp DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return refused("smtp end of DATA", err)
	}
	_ = client.Quit() // the message is accepted; a failed QUIT changes nothing
	return nil
}

// refused wraps an SMTP error, permanent for a 5xx reply.
func refused(step string, err error) error {
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600 {
		return bus.Permanent(fmt.Errorf("%s: %d %s", step, reply.Code, reply.Msg))
	}
	return fmt.Errorf("%s: %w", step, err)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
