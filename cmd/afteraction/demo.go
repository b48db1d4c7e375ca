package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/logging"
	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/report/pades"
)

//go:embed demo/incident.json
var demoIncident []byte

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	out := fs.String("out", "out", "directory for the report PDF")
	dsn := fs.String("database-url", envOr("DEMO_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/afteraction_demo?sslmode=disable"),
		"Postgres database for the demo; it is dropped and created afresh (no server answering on this machine: a throwaway cluster)")
	verbose := fs.Bool("v", false, "log every service at info level")
	keep := fs.Bool("keep", false, "keep the stack (and the console) running after the demo until Ctrl-C")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := "error"
	if *verbose {
		level = "info"
	}
	log, err := logging.New("console", level)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	store, err := os.MkdirTemp("", "afteraction-demo-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(store)

	certPath, keyPath, err := demoSigningCert(*out)
	if err != nil {
		return err
	}
	env := map[string]string{"REPORT_CERT_FILE": certPath, "REPORT_CERT_KEY_FILE": keyPath,
		// High and critical reviews need a second approval in the demo, so it
		// shows the whole sign-off.
		"REVIEW_APPROVAL_SEVERITIES": "critical,high"}
	// The demo's database is fresh, so an evidence retention policy purges
	// nothing of anyone's history; the report prints the date it gives.
	if os.Getenv("EVIDENCE_RETENTION") == "" {
		env["EVIDENCE_RETENTION"] = "default=3y;severity:high=5y;severity:critical=7y"
	}
	// Without a bridge configured, the tracker delivers to a local generic
	// webhook receiver; TRACKER_BRIDGES(_FILE) points it at a real tracker.
	var hook *demoReceiver
	if os.Getenv("TRACKER_BRIDGES") == "" && os.Getenv("TRACKER_BRIDGES_FILE") == "" {
		if hook, err = startDemoReceiver(); err != nil {
			return err
		}
		defer hook.Close() //nolint:errcheck
		for k, v := range hook.bridgesEnv() {
			env[k] = v
		}
	}
	fmt.Println("starting embedded NATS, the five services and mailpit ...")
	stack, err := StartStack(ctx, StackConfig{DatabaseURL: *dsn, FreshDatabase: true, ThrowawayPostgres: true,
		StoreDir: store, Log: log, Env: env, Mail: true, MailDir: filepath.Join(*out, "mailpit")})
	if err != nil {
		return err
	}
	defer stack.Stop() //nolint:errcheck
	if stack.PostgresNote != "" {
		fmt.Println("no Postgres answers at the demo's database URL: started a " + stack.PostgresNote)
	}

	var inc events.IncidentClosed
	if err := json.Unmarshal(demoIncident, &inc); err != nil {
		return fmt.Errorf("demo incident: %w", err)
	}
	shiftToNow(&inc, time.Now().UTC().Add(-2*time.Hour))
	earlier, err := publishEarlierIncident(ctx, stack, log)
	if err != nil {
		return err
	}
	res, err := runScenario(ctx, stack, inc, log)
	if err != nil {
		return err
	}
	path := filepath.Join(*out, inc.ExternalID+".pdf")
	if err := os.WriteFile(path, res.PDF, 0o644); err != nil {
		return err
	}
	redactedPath := filepath.Join(*out, inc.ExternalID+"-redacted.pdf")
	if err := os.WriteFile(redactedPath, res.RedactedPDF, 0o644); err != nil {
		return err
	}
	offline, err := verifyOffline(res.PDF, res.CertPEM)
	if err != nil {
		return err
	}
	bridged, err := demoBridge(ctx, stack, hook, res)
	if err != nil {
		return err
	}
	prog, err := demoProgrammeReport(ctx, stack, res, earlier, inc.Timestamps.ClosedAt, *out)
	if err != nil {
		return err
	}
	fmt.Printf(`
incident     %s  %q (%s, source %s/%s)
review       %s  %d participants answered, completed by %s
report       %s  version %d, %d bytes
             pdf sha256  %s
             signature   ed25519 key %s, verified: %v
             in the pdf  %s
actions      %d open action items:
%s
bridge       %s
programme    %s
written      %s
             %s (redacted rendition, for outside the organisation)
             %s (the certificate to pin: afteraction verify --cert %s %s)
console      %s/console/reviews/%s  (sign in as "facilitator" or "approver", password %q)
`, res.IncidentID, inc.Title, inc.Severity, inc.Source, inc.ExternalID,
		res.ReviewID, res.Answered, res.Facilitator,
		res.ReportID, res.Version, len(res.PDF), res.PDFSHA256, res.KeyID, res.Verified, offline,
		len(res.Actions), indentLines(res.Actions, "               - "), bridged, prog, path, redactedPath, certPath, certPath, path,
		stack.URLs["review"], res.ReviewID, stack.ConsolePassword)
	mails, err := settledDeliveries(ctx, stack)
	printMails(mails, stack, filepath.Join(*out, "mailpit"))
	if err != nil || !*keep {
		if err == nil {
			fmt.Println("             (the demo stops its stack now; run it with -keep to browse the console and the mail)")
		}
		return err
	}
	fmt.Println("serving until Ctrl-C ...")
	<-ctx.Done()
	return nil
}

// publishEarlierIncident publishes an incident like the demo's, closed 35
// days ago with the same category, asset and root cause and nobody to invite
// (its review is historical), so that the programme report shows the demo
// incident as a recurrence of it. It returns the earlier incident's id.
func publishEarlierIncident(ctx context.Context, s *Stack, log *zap.Logger) (string, error) {
	var inc events.IncidentClosed
	if err := json.Unmarshal(demoIncident, &inc); err != nil {
		return "", fmt.Errorf("demo incident: %w", err)
	}
	shiftToNow(&inc, time.Now().UTC().Add(-35*24*time.Hour))
	inc.ExternalID += "-EARLIER"
	inc.Title = "Earlier: " + inc.Title
	inc.People, inc.Timeline = nil, nil
	b, err := bus.Connect(ctx, s.NATSURL, "demo", log, s.Client)
	if err != nil {
		return "", err
	}
	defer b.Close()
	env, err := events.New(events.TypeIncidentClosed, "afteraction/demo", inc.ExternalID, inc)
	if err != nil {
		return "", err
	}
	if err := b.Publish(ctx, events.SubjectIncidentClosedPrefix+inc.Source, env); err != nil {
		return "", err
	}
	fmt.Printf("published an earlier incident of the same kind, %s/%s, closed 35 days ago\n", inc.Source, inc.ExternalID)
	return intake.IncidentID(inc.Source, inc.ExternalID), nil
}

// demoProgrammeReport publishes the programme report of the month the demo
// incident closed in, once the report service has seen its review, its
// action items and the earlier incident it recurs, writes it to dir and
// checks it as a compliance team would: offline against the pinned
// certificate and with the service.
func demoProgrammeReport(ctx context.Context, s *Stack, res Scenario, earlier string, closedAt time.Time, dir string) (string, error) {
	label := closedAt.UTC().Format("2006-01")
	from := closedAt.UTC().Format("2006-01") + "-01"
	err := poll(ctx, "the programme figures", 30*time.Second, func() (bool, error) {
		var m struct {
			Recurrences []struct {
				Earlier []struct {
					IncidentID string `json:"incident_id"`
				} `json:"earlier"`
			} `json:"recurrences"`
			Series []struct {
				Total struct {
					Incidents int `json:"incidents"`
					Actions   struct {
						Created int `json:"created"`
					} `json:"actions"`
				} `json:"all"`
			} `json:"series"`
		}
		if err := getJSON(ctx, s.URLs["report"]+"/v1/metrics/programme?period=month&from="+from, s.AdminToken, &m); err != nil {
			return false, err
		}
		recurs := len(m.Recurrences) > 0 && len(m.Recurrences[0].Earlier) > 0 && m.Recurrences[0].Earlier[0].IncidentID == earlier
		return recurs && len(m.Series) > 0 && m.Series[0].Total.Incidents > 0 &&
			m.Series[0].Total.Actions.Created >= len(res.Actions), nil
	})
	if err != nil {
		return "", err
	}
	var v struct {
		ReportID     string `json:"report_id"`
		Version      int    `json:"version"`
		Pages        int    `json:"pages"`
		Incidents    int    `json:"incidents"`
		DownloadPath string `json:"download_path"`
	}
	if err := call(ctx, http.MethodPost, s.URLs["report"]+"/v1/programme-reports", s.AdminToken,
		map[string]string{"period": label}, &v); err != nil {
		return "", fmt.Errorf("publish the programme report: %w", err)
	}
	var doc []byte
	if err := call(ctx, http.MethodGet, s.URLs["report"]+v.DownloadPath, s.AdminToken, nil, &doc); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "programme-report-"+label+".pdf")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		return "", err
	}
	offline, err := verifyOffline(doc, res.CertPEM)
	if err != nil {
		return "", fmt.Errorf("programme report: %w", err)
	}
	var answer verifyAnswer
	if err := callRaw(ctx, s.URLs["report"]+"/v1/verify", s.AdminToken, doc, &answer); err != nil {
		return "", err
	}
	if !answer.Valid {
		return "", fmt.Errorf("programme report: the service does not vouch for it: %s", answer.Reason)
	}
	return fmt.Sprintf("%s  %s version %d, %d incident(s), %d pages; the demo incident recurs %s\n"+
		"             in the pdf  %s\n             written     %s",
		v.ReportID, label, v.Version, v.Incidents, v.Pages, earlier, offline, path), nil
}

// demoSigningCert returns the demo's report signing certificate and key in
// dir, creating a self-signed pair on the first run and keeping it, so every
// demo PDF verifies with the same pinned certificate.
func demoSigningCert(dir string) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, "report-signing-cert.pem"), filepath.Join(dir, "report-signing-key.pem")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(keyPath); err == nil {
		return certPath, keyPath, nil
	}
	cert, key, err := pades.SelfSigned("afteraction demo report signing", time.Now())
	if err != nil {
		return "", "", err
	}
	keyPEM, err := pades.EncodeKey(key)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certPath, pades.EncodeCertificates(cert), 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// Scenario is what one pass through the pipeline produced.
type Scenario struct {
	IncidentID, ReviewID, ReportID, PDFSHA256, KeyID, Facilitator string
	Version, Answered                                             int
	Verified                                                      bool
	PDF                                                           []byte
	// CertPEM is the certificate that signed inside the PDF.
	CertPEM []byte
	// RedactedPDF is the version's redacted rendition.
	RedactedPDF []byte
	Actions     []string
}

// runScenario publishes inc, answers the review as three participants,
// completes it, and collects the report and the action items.
func runScenario(ctx context.Context, s *Stack, inc events.IncidentClosed, log *zap.Logger) (Scenario, error) {
	var res Scenario
	b, err := bus.Connect(ctx, s.NATSURL, "demo", log, s.Client)
	if err != nil {
		return res, err
	}
	defer b.Close()
	env, err := events.New(events.TypeIncidentClosed, "afteraction/demo", inc.ExternalID, inc)
	if err != nil {
		return res, err
	}
	if err := b.Publish(ctx, events.SubjectIncidentClosedPrefix+inc.Source, env); err != nil {
		return res, err
	}
	res.IncidentID = intake.IncidentID(inc.Source, inc.ExternalID)
	fmt.Printf("published %s/%s on %s%s\n", inc.Source, inc.ExternalID, events.SubjectIncidentClosedPrefix, inc.Source)

	tok := s.AdminToken
	var rv reviewView
	err = poll(ctx, "the review to open", 30*time.Second, func() (bool, error) {
		var list struct {
			Reviews []reviewView `json:"reviews"`
		}
		if err := getJSON(ctx, s.URLs["review"]+"/v1/reviews?incident_id="+res.IncidentID, tok, &list); err != nil {
			return false, err
		}
		if len(list.Reviews) == 0 {
			return false, nil
		}
		rv = list.Reviews[0]
		return true, nil
	})
	if err != nil {
		return res, err
	}
	res.ReviewID = rv.ReviewID
	fmt.Printf("review %s opened with %d participants, due %s\n", rv.ReviewID, len(rv.Participants), rv.DueAt)
	if err := scheduleDemoMeeting(ctx, s, rv.ReviewID); err != nil {
		return res, err
	}

	var qs questionnaire
	if err := getJSON(ctx, s.URLs["review"]+"/v1/reviews/"+rv.ReviewID+"/questions", tok, &qs); err != nil {
		return res, err
	}
	// Three participants answer through their invitation links' web form,
	// as a person does.
	for i, p := range rv.Participants {
		if i == 3 {
			break
		}
		form := newBrowser()
		if err := form.submit(ctx, p.FormURL, formAnswers(answersFor(qs.Questions, i))); err != nil {
			return res, fmt.Errorf("answers of %s: %w", p.Name, err)
		}
		res.Answered++
		fmt.Printf("  %s (%s) answered through the web form\n", p.Name, p.Role)
	}

	// The facilitator signs in to the console, signs off, and (where a second
	// approval is required) the approver approves.
	facilitator := rv.Participants[0]
	if rv.Facilitator != nil {
		facilitator = *rv.Facilitator
	}
	completion := demoCompletion(facilitator, inc)
	page := s.URLs["review"] + "/console/reviews/" + rv.ReviewID
	fac := newBrowser()
	if err := fac.signIn(ctx, s.URLs["review"], consoleFacilitator, s.ConsolePassword); err != nil {
		return res, err
	}
	if err := fac.open(ctx, page); err != nil {
		return res, err
	}
	if err := fac.submit(ctx, page+"/signoff", signOffForm(completion)); err != nil {
		return res, fmt.Errorf("sign off: %w", err)
	}
	res.Facilitator = "Dev Facilitator (console account " + consoleFacilitator + ")"
	if strings.Contains(fac.page, "Waiting for the second approval") {
		appr := newBrowser()
		if err := appr.signIn(ctx, s.URLs["review"], consoleApprover, s.ConsolePassword); err != nil {
			return res, err
		}
		if err := appr.open(ctx, page); err != nil {
			return res, err
		}
		if err := appr.submit(ctx, page+"/approval", url.Values{"decision": {"approve"}}); err != nil {
			return res, fmt.Errorf("approve: %w", err)
		}
		res.Facilitator += ", approved by Dev Approver"
	}
	fmt.Printf("review signed off in the console with %d action items: %s\n", len(completion.ActionItems), page)

	var rep reportView
	err = poll(ctx, "the report", 60*time.Second, func() (bool, error) {
		var list struct {
			Reports []reportView `json:"reports"`
		}
		if err := getJSON(ctx, s.URLs["report"]+"/v1/reports?incident_id="+res.IncidentID, tok, &list); err != nil {
			return false, err
		}
		if len(list.Reports) == 0 {
			return false, nil
		}
		rep = list.Reports[0]
		return true, nil
	})
	if err != nil {
		return res, err
	}
	res.ReportID = rep.ReportID
	if err := call(ctx, http.MethodGet, s.URLs["report"]+"/v1/reports/"+rep.ReportID+"/pdf", tok, nil, &res.PDF); err != nil {
		return res, err
	}
	var v verifyAnswer
	if err := callRaw(ctx, s.URLs["report"]+"/v1/verify", tok, res.PDF, &v); err != nil {
		return res, err
	}
	res.Version, res.PDFSHA256, res.KeyID, res.Verified = v.Version, v.PDFSHA256, v.KeyID, v.Valid
	if err := call(ctx, http.MethodGet, s.URLs["report"]+"/v1/certificates/current.pem", tok, nil, &res.CertPEM); err != nil {
		return res, err
	}
	redactedURL := fmt.Sprintf("%s/v1/reports/%s/versions/%d/redacted.pdf", s.URLs["report"], rep.ReportID, res.Version)
	if err := call(ctx, http.MethodGet, redactedURL, tok, nil, &res.RedactedPDF); err != nil {
		return res, err
	}

	err = poll(ctx, "the action items", 30*time.Second, func() (bool, error) {
		var list struct {
			Actions []struct {
				Title    string `json:"title"`
				Category string `json:"category"`
				Owner    struct {
					Name string `json:"name"`
				} `json:"owner"`
				DueDate string `json:"due_date"`
			} `json:"actions"`
		}
		if err := getJSON(ctx, s.URLs["tracker"]+"/v1/actions?incident="+url.QueryEscape(res.IncidentID), tok, &list); err != nil {
			return false, err
		}
		if len(list.Actions) < len(completion.ActionItems) {
			return false, nil
		}
		res.Actions = res.Actions[:0]
		for _, a := range list.Actions {
			res.Actions = append(res.Actions, fmt.Sprintf("[%s] %s (%s, due %s)", a.Category, a.Title, a.Owner.Name, a.DueDate))
		}
		return true, nil
	})
	return res, err
}

type participantView struct {
	ParticipantID   string `json:"participant_id"`
	Name            string `json:"name"`
	Email           string `json:"email"`
	Role            string `json:"role"`
	InvitationToken string `json:"invitation_token"`
	FormURL         string `json:"form_url"`
}

type reviewView struct {
	ReviewID     string            `json:"review_id"`
	DueAt        *time.Time        `json:"due_at"`
	Facilitator  *participantView  `json:"facilitator"`
	Participants []participantView `json:"participants"`
}

type questionnaire struct {
	Questions []events.Question `json:"questions"`
}

type reportView struct {
	ReportID string `json:"report_id"`
}

func indentLines(lines []string, prefix string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(prefix + l + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// demoBridge waits until the local receiver has every action item, sends
// the first one's status back as done through the bridge's signed inbound
// endpoint, and says what happened. With a real bridge configured it lists
// the deliveries the tracker recorded instead.
func demoBridge(ctx context.Context, s *Stack, hook *demoReceiver, res Scenario) (string, error) {
	tok := s.AdminToken
	var ds struct {
		Deliveries []struct {
			ActionID    string `json:"action_id"`
			Bridge      string `json:"bridge"`
			State       string `json:"state"`
			ExternalID  string `json:"external_id"`
			ExternalURL string `json:"external_url"`
			LastError   string `json:"last_error"`
		} `json:"deliveries"`
	}
	if hook == nil {
		if err := getJSON(ctx, s.URLs["tracker"]+"/v1/bridges/deliveries?limit=20", tok, &ds); err != nil {
			return "", err
		}
		lines := []string{}
		for _, d := range ds.Deliveries {
			lines = append(lines, fmt.Sprintf("%s → %s: %s %s %s", d.ActionID, d.Bridge, d.State, d.ExternalURL, d.LastError))
		}
		return "configured bridges (GET /v1/bridges/deliveries, GET /v1/bridges/failures):\n" +
			indentLines(lines, "               - "), nil
	}
	if err := poll(ctx, "the webhook deliveries", 30*time.Second, func() (bool, error) {
		return len(hook.deliveries()) >= len(res.Actions), nil
	}); err != nil {
		return "", err
	}
	got := hook.deliveries()
	first := got[0].Action.ActionID
	if err := hook.sendStatus(ctx, s.URLs["tracker"], first, "done"); err != nil {
		return "", err
	}
	var a struct {
		Status string `json:"status"`
	}
	if err := getJSON(ctx, s.URLs["tracker"]+"/v1/actions/"+first, tok, &a); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d signed deliveries verified by the local receiver at %s;\n"+
		"             its signed status back made action %s %s", len(got), hook.url, first, a.Status), nil
}
