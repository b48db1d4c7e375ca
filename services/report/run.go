package report

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/tracing"
	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pdf"
	reportpg "github.com/afteraction/afteraction/services/report/postgres"
)

// ServiceName names the service on NATS (durables, DLQ subjects) and in logs.
const ServiceName = "report"

// Config is the report service's configuration, read from the environment.
type Config struct {
	config.Common
	// SigningKey is the Ed25519 seed from REPORT_SIGNING_KEY (secret).
	SigningKey []byte
	// SigningKeyFile is REPORT_SIGNING_KEY_FILE: a file holding the base64 seed.
	SigningKeyFile string
	// DevSigningKey (REPORT_DEV_SIGNING_KEY=true) generates and persists a key
	// in the database when neither of the above is set. Development only.
	DevSigningKey bool
	// TrustedPublicKeys (REPORT_TRUSTED_PUBLIC_KEYS) are the public keys,
	// besides the service's own, whose report versions verify: keys of earlier
	// rotations. A key found only in the database is not trusted.
	TrustedPublicKeys []ed25519.PublicKey
	// CertFile (REPORT_CERT_FILE) is the PEM X.509 certificate, followed by
	// its issuers if any, that signs inside every PDF; CertKeyFile
	// (REPORT_CERT_KEY_FILE) its PEM private key (ECDSA P-256 or RSA ≥ 2048).
	// Without them REPORT_DEV_SIGNING_KEY=true uses a self-signed development
	// certificate kept in the database.
	CertFile, CertKeyFile string
	// TrustedCertsFile (REPORT_TRUSTED_CERTS_FILE) is a PEM bundle of the
	// certificates of earlier rotations: PDFs they signed keep verifying.
	TrustedCertsFile string
	// MigrateDatabaseURL (REPORT_MIGRATE_DATABASE_URL, secret) connects as the
	// role that owns the report schema, for migrations only; the service then
	// runs as DATABASE_URL's role, which cannot change what it wrote. Empty:
	// DATABASE_URL's role migrates and runs (development).
	MigrateDatabaseURL string
	// RedactRules (REPORT_REDACT_RULES, comma-separated, default
	// "names,emails,ips,hosts"; "none" for none) and RedactPatterns
	// (REPORT_REDACT_PATTERNS, a JSON array of regular expressions, each match
	// masked as "[redacted]") make the redacted rendition of every version.
	RedactRules    []string
	RedactPatterns []string
	// RecurrenceWindow (REPORT_RECURRENCE_WINDOW, a Go duration, default
	// 2160h = 90 days) is how long after an incident's closure another of the
	// same category and asset, or the same root cause, counts as a recurrence.
	RecurrenceWindow time.Duration
	// EvidenceRetention (EVIDENCE_RETENTION, e.g.
	// "default=3y;category:malware=5y;severity:critical=7y", see
	// RetentionPolicy) is how long intake's raw payloads and review's answers
	// are kept after an incident closed; empty keeps them indefinitely.
	EvidenceRetention RetentionPolicy
}

// LoadConfig reads the configuration through getenv, applies defaults and
// validates it. It does no I/O: REPORT_SIGNING_KEY_FILE is read by Run.
func LoadConfig(getenv func(string) string) (Config, error) {
	l := config.NewLoader(getenv)
	c := Config{
		Common:             l.Common(":8083"),
		SigningKeyFile:     l.Raw("REPORT_SIGNING_KEY_FILE"),
		DevSigningKey:      l.Bool("REPORT_DEV_SIGNING_KEY", false),
		CertFile:           l.Raw("REPORT_CERT_FILE"),
		CertKeyFile:        l.Raw("REPORT_CERT_KEY_FILE"),
		TrustedCertsFile:   l.Raw("REPORT_TRUSTED_CERTS_FILE"),
		MigrateDatabaseURL: l.Raw("REPORT_MIGRATE_DATABASE_URL"),
		RedactRules:        DefaultRedactRules,
		RecurrenceWindow:   l.Duration("REPORT_RECURRENCE_WINDOW", DefaultRecurrenceWindow.String()),
	}
	if s := strings.TrimSpace(l.Raw("REPORT_REDACT_RULES")); s != "" {
		c.RedactRules = nil
		for r := range strings.SplitSeq(s, ",") {
			if r = strings.TrimSpace(r); r != "" && r != "none" {
				c.RedactRules = append(c.RedactRules, r)
			}
		}
	}
	if s := l.Raw("REPORT_REDACT_PATTERNS"); s != "" {
		if err := json.Unmarshal([]byte(s), &c.RedactPatterns); err != nil {
			l.Fail(fmt.Errorf("REPORT_REDACT_PATTERNS: want a JSON array of regular expressions: %w", err))
		}
	}
	var err error
	if c.EvidenceRetention, err = ParseRetentionPolicy(l.Raw("EVIDENCE_RETENTION")); err != nil {
		l.Fail(fmt.Errorf("EVIDENCE_RETENTION: %w", err))
	}
	if _, err := NewRedactor(c.RedactRules, c.RedactPatterns); err != nil {
		l.Fail(fmt.Errorf("REPORT_REDACT_RULES or REPORT_REDACT_PATTERNS: %w", err))
	}
	if (c.CertFile == "") != (c.CertKeyFile == "") {
		l.Fail(errors.New("REPORT_CERT_FILE and REPORT_CERT_KEY_FILE: set both or neither"))
	}
	if c.CertFile == "" && !c.DevSigningKey {
		l.Fail(errors.New("no PDF signing certificate: set REPORT_CERT_FILE and REPORT_CERT_KEY_FILE (or REPORT_DEV_SIGNING_KEY=true in development)"))
	}
	if s := l.Raw("REPORT_SIGNING_KEY"); s != "" {
		var err error
		if c.SigningKey, err = DecodeSeed(s); err != nil {
			l.Fail(fmt.Errorf("REPORT_SIGNING_KEY: %w", err))
		}
	}
	for i, s := range strings.Split(l.Raw("REPORT_TRUSTED_PUBLIC_KEYS"), ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		pub, err := DecodePublicKey(s)
		if err != nil {
			l.Fail(fmt.Errorf("REPORT_TRUSTED_PUBLIC_KEYS entry %d: %w", i+1, err))
			continue
		}
		c.TrustedPublicKeys = append(c.TrustedPublicKeys, pub)
	}
	if c.SigningKey != nil && c.SigningKeyFile != "" {
		l.Fail(errors.New("set REPORT_SIGNING_KEY or REPORT_SIGNING_KEY_FILE, not both"))
	}
	if c.SigningKey == nil && c.SigningKeyFile == "" && !c.DevSigningKey {
		l.Fail(errors.New("no signing key: set REPORT_SIGNING_KEY or REPORT_SIGNING_KEY_FILE (or REPORT_DEV_SIGNING_KEY=true in development)"))
	}
	return c, l.Err()
}

// fields logs the configuration with secrets masked.
func (c Config) fields() []zap.Field {
	keySource := "dev (database)"
	switch {
	case c.SigningKey != nil:
		keySource = "REPORT_SIGNING_KEY"
	case c.SigningKeyFile != "":
		keySource = "file " + c.SigningKeyFile
	}
	trusted := make([]string, len(c.TrustedPublicKeys))
	for i, pub := range c.TrustedPublicKeys {
		trusted[i] = KeyIDOf(pub)
	}
	certSource := "dev (database)"
	if c.CertFile != "" {
		certSource = "file " + c.CertFile
	}
	migrateAs := "DATABASE_URL"
	if c.MigrateDatabaseURL != "" {
		migrateAs = postgres.Redact(c.MigrateDatabaseURL)
	}
	return append(c.Common.Fields(), zap.String("signing_key_source", keySource), zap.Strings("trusted_public_keys", trusted),
		zap.String("migrate_database_url", migrateAs),
		zap.String("signing_cert_source", certSource), zap.String("trusted_certs_file", c.TrustedCertsFile),
		zap.Duration("recurrence_window", c.RecurrenceWindow),
		zap.String("evidence_retention", c.EvidenceRetention.String()))
}

// Deps is what the caller may inject.
type Deps struct {
	// Log is required.
	Log *zap.Logger
	// Listener, when set, is served instead of listening on HTTPAddr.
	Listener net.Listener
	// TracerProvider, when set, records the service's spans instead of the
	// provider the OTEL_* variables configure (tests).
	TracerProvider trace.TracerProvider
	// Objects, when set, stores the report PDFs instead of the JetStream
	// object store (tests pass one that holds a render in flight).
	Objects ObjectStore
}

// Run runs the report service until ctx is cancelled: migrations, signing
// key, JetStream topology, the three consumers, the outbox relay and the HTTP
// server. On cancellation the consumers finish the messages they hold and the
// HTTP server its requests; only then does the relay make its final pass, so
// everything they committed is published before the connections close.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if deps.Log == nil {
		return errors.New("report: Deps.Log is required")
	}
	log := deps.Log.Named(ServiceName)
	log.Info("starting", cfg.fields()...)

	if err := migrate(ctx, cfg); err != nil {
		return err
	}
	cfg.Tracing.Provider = deps.TracerProvider
	tp, stopTracing, err := tracing.Setup(ctx, cfg.Tracing, ServiceName, log)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer stopTracing()

	pool, err := postgres.Open(ctx, cfg.DatabaseURL, reportpg.Schema)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := NewPostgresStore(pool)

	signer, err := loadSigner(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	if err := store.RegisterKey(ctx, signer.KeyID(), signer.Public()); err != nil {
		return err
	}
	trusted := NewTrustedKeys(signer.Public(), cfg.TrustedPublicKeys...)
	signing, err := loadPDFSigning(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	if err := store.RegisterCertificate(ctx, signing.Signer.Certificate()); err != nil {
		return err
	}
	log.Info("signing key ready", zap.String("key_id", signer.KeyID()),
		zap.String("cert_sha256", signing.Signer.Fingerprint()), zap.Int("trusted_certs", len(signing.Trusted)))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	collector := NewProgrammeCollector(store, log)
	collector.RecurrenceWindow = cfg.RecurrenceWindow
	reg.MustRegister(collector)

	b, err := bus.Connect(ctx, cfg.NATSURL, ServiceName, log, cfg.BusOptions(reg, tp))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.EnsureTopology(ctx, bus.Topology{Replicas: cfg.StreamReplicas}); err != nil {
		return err
	}

	renderer, err := pdf.NewRenderer()
	if err != nil {
		return err
	}
	var objects ObjectStore = b
	if deps.Objects != nil {
		objects = deps.Objects
	}
	svc, err := NewService(store, objects, renderer, signer, signing.Signer, log, reg)
	if err != nil {
		return err
	}
	redactor, err := NewRedactor(cfg.RedactRules, cfg.RedactPatterns)
	if err != nil {
		return err
	}
	svc.RedactWith(redactor)
	svc.RetainWith(cfg.EvidenceRetention)
	evidence := &Evidence{Store: store, Policy: cfg.EvidenceRetention, Log: log.Named("evidence")}

	ln, err := httpapi.Listen(deps.Listener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	programmes := &ProgrammePublisher{Source: store, Store: store, Objects: objects, Renderer: renderer, Signer: signer,
		PDFSig: signing.Signer, RecurrenceWindow: cfg.RecurrenceWindow, Now: time.Now}
	api := &API{Reader: store, Metrics: store, Programme: store, Library: store, Training: renderer,
		Programmes: programmes, ProgrammeReports: store, RecurrenceWindow: cfg.RecurrenceWindow,
		Trusted: trusted, TrustedCerts: signing.Trusted, Evidence: evidence, Tokens: cfg.APITokens, Log: log}
	api.Routes(mux)
	httpapi.HealthWithLog(mux, map[string]httpapi.Check{
		"postgres": store.Ping,
		"nats":     b.Ping,
	}, log.Named("http"))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	// The relay outlives the workers: its final pass publishes everything they
	// committed while shutting down.
	b.RecordDeadLettersIn(pool)
	relay := &bus.Relay{Bus: b, Pool: pool, Schema: reportpg.Schema, Log: log}
	var workers []func(context.Context) error
	for _, sub := range Subscriptions(svc, Projector{Model: store}) {
		workers = append(workers, func(ctx context.Context) error { return sub.Run(ctx, b, pool) })
	}
	workers = append(workers, func(ctx context.Context) error {
		return httpapi.Serve(ctx, ln, tracing.HTTP(tp, httpapi.Logged(mux, log)), log)
	})
	workers = append(workers, func(ctx context.Context) error { return postgres.RunRetention(ctx, pool, cfg.Retention, log) })
	workers = append(workers, func(ctx context.Context) error { return evidence.Run(ctx, cfg.Retention.Every) })
	err = relay.RunAlongside(ctx, workers...)
	log.Info("stopped", zap.Error(err))
	return err
}

// migrate applies the migrations as the schema's owner: the role of
// REPORT_MIGRATE_DATABASE_URL when set, else DATABASE_URL's.
func migrate(ctx context.Context, cfg Config) error {
	dsn := cfg.MigrateDatabaseURL
	if dsn == "" {
		dsn = cfg.DatabaseURL
	}
	pool, err := postgres.Open(ctx, dsn, reportpg.Schema)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, reportpg.Schema, reportpg.Migrations()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// loadSigner picks the signing key: REPORT_SIGNING_KEY, then
// REPORT_SIGNING_KEY_FILE, then (development only) a key kept in the database.
func loadSigner(ctx context.Context, cfg Config, store Store, log *zap.Logger) (*Signer, error) {
	switch {
	case cfg.SigningKey != nil:
		return NewSigner(cfg.SigningKey)
	case cfg.SigningKeyFile != "":
		b, err := os.ReadFile(cfg.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("REPORT_SIGNING_KEY_FILE: %w", err)
		}
		seed, err := DecodeSeed(string(b))
		if err != nil {
			return nil, fmt.Errorf("REPORT_SIGNING_KEY_FILE %s: %w", cfg.SigningKeyFile, err)
		}
		return NewSigner(seed)
	case cfg.DevSigningKey:
		log.Warn("using a development signing key stored in the database: reports signed with it prove nothing; set REPORT_SIGNING_KEY or REPORT_SIGNING_KEY_FILE in production")
		return DevSigner(ctx, store)
	default:
		return nil, errors.New("no signing key configured")
	}
}

// loadPDFSigning picks the PDF signing certificate (REPORT_CERT_FILE, or the
// development certificate kept in the database) and reads the certificates
// of earlier rotations.
func loadPDFSigning(ctx context.Context, cfg Config, store Store, log *zap.Logger) (PDFSigning, error) {
	var (
		s   PDFSigning
		err error
	)
	if cfg.CertFile != "" {
		s.Signer, err = LoadPDFSigner(cfg.CertFile, cfg.CertKeyFile)
	} else {
		log.Warn("signing PDFs with a self-signed development certificate stored in the database; set REPORT_CERT_FILE and REPORT_CERT_KEY_FILE in production")
		s.Signer, err = DevPDFSigner(ctx, store, time.Now())
	}
	if err != nil {
		return s, err
	}
	s.Trusted = []*x509.Certificate{s.Signer.Certificate()}
	if cfg.TrustedCertsFile != "" {
		b, err := os.ReadFile(cfg.TrustedCertsFile)
		if err != nil {
			return s, fmt.Errorf("REPORT_TRUSTED_CERTS_FILE: %w", err)
		}
		more, err := pades.ParseCertificates(b)
		if err != nil {
			return s, fmt.Errorf("REPORT_TRUSTED_CERTS_FILE %s: %w", cfg.TrustedCertsFile, err)
		}
		s.Trusted = append(s.Trusted, more...)
	}
	return s, nil
}
