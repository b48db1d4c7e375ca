package report

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/report/pades"
)

// PostgresStore implements Store, ReadModel and Reader on the report schema.
// Its SQL sits beside the Go that runs it; the migrations are in ./postgres.
type PostgresStore struct{ pool *pgxpool.Pool }

var (
	_ Store     = (*PostgresStore)(nil)
	_ ReadModel = (*PostgresStore)(nil)
	_ Reader    = (*PostgresStore)(nil)
)

// NewPostgresStore returns a store on pool, whose search_path is the report schema.
func NewPostgresStore(pool *pgxpool.Pool) *PostgresStore { return &PostgresStore{pool: pool} }

const (
	ensureReport     = `INSERT INTO reports (report_id, incident_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	lockReport       = `SELECT report_id FROM reports WHERE incident_id = $1 FOR UPDATE`
	sameDataVersion  = `SELECT EXISTS (SELECT 1 FROM report_versions WHERE report_id = $1 AND data_sha256 = $2)`
	versionTaken     = `SELECT EXISTS (SELECT 1 FROM report_versions WHERE report_id = $1 AND version = $2)`
	upsertCompletion = `INSERT INTO review_completions (incident_id, review_id, completed_at) VALUES ($1, $2, $3)
ON CONFLICT (incident_id) DO UPDATE SET review_id = excluded.review_id, completed_at = excluded.completed_at
WHERE review_completions.completed_at < excluded.completed_at`
	insertVersion = `INSERT INTO report_versions (report_id, version, incident_id, review_id, event_id, pdf_sha256,
	data_sha256, size_bytes, pages, object_bucket, object_key, signature, key_id, published_at, pdf, cert_sha256)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, nullif($16, ''))`
)

// PublishVersion implements Store.
func (s *PostgresStore) PublishVersion(ctx context.Context, eventID string, rc events.ReviewCompleted, dataSHA256 string,
	build func(ctx context.Context, d Draft) (Publication, error)) (*Version, error) {
	var published *Version
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		fresh, err := pg.MarkProcessed(ctx, tx, eventID)
		if err != nil || !fresh {
			return err
		}
		if err := upsertIncidentFromReview(ctx, tx, rc); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, upsertCompletion, rc.IncidentID, rc.ReviewID, rc.CompletedAt); err != nil {
			return fmt.Errorf("record review completion: %w", err)
		}
		reportID := ReportIDFor(rc.IncidentID)
		if _, err := tx.Exec(ctx, ensureReport, reportID, rc.IncidentID); err != nil {
			return fmt.Errorf("ensure report %s: %w", reportID, err)
		}
		if err := tx.QueryRow(ctx, lockReport, rc.IncidentID).Scan(&reportID); err != nil {
			return fmt.Errorf("lock report of incident %s: %w", rc.IncidentID, err)
		}
		var same bool
		if err := tx.QueryRow(ctx, sameDataVersion, reportID, dataSHA256).Scan(&same); err != nil {
			return fmt.Errorf("look up data digest: %w", err)
		}
		if same {
			return nil
		}
		n := VersionOf(rc)
		var taken bool
		if err := tx.QueryRow(ctx, versionTaken, reportID, n).Scan(&taken); err != nil {
			return fmt.Errorf("look up version %d of %s: %w", n, reportID, err)
		}
		if taken {
			return fmt.Errorf("%w: amendment %d of review %s was rendered as version %d from other data",
				ErrVersionTaken, rc.Amendment, rc.ReviewID, n)
		}
		hold, err := readHold(ctx, tx, rc.IncidentID)
		if err != nil {
			return err
		}
		p, err := build(ctx, Draft{ReportID: reportID, Version: n, Hold: hold})
		if err != nil {
			return err
		}
		v := p.Version
		if _, err := tx.Exec(ctx, insertVersion, v.ReportID, v.Version, v.IncidentID, v.ReviewID, v.EventID,
			v.PDFSHA256, v.DataSHA256, v.SizeBytes, v.Pages, v.ObjectBucket, v.ObjectKey, v.Signature,
			v.KeyID, v.PublishedAt, p.PDF, v.CertSHA256); err != nil {
			return fmt.Errorf("insert report %s version %d: %w", v.ReportID, v.Version, err)
		}
		if err := pg.Enqueue(ctx, tx, events.SubjectReportPublished, p.Event); err != nil {
			return err
		}
		if r := p.Redacted; r != nil {
			if _, err := tx.Exec(ctx, insertRedaction, v.ReportID, v.Version, r.PDFSHA256, r.DataSHA256, v.CertSHA256,
				len(r.PDF), r.Pages, r.PDF, v.PublishedAt); err != nil {
				return fmt.Errorf("insert redacted rendition of %s version %d: %w", v.ReportID, v.Version, err)
			}
		}
		for _, e := range publicationCustody(v, rc, p.Event.ID, p.Redacted) {
			if _, err := appendCustody(ctx, tx, e); err != nil {
				return err
			}
		}
		published = &v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return published, nil
}

// RecordRenderFailure implements Store.
func (s *PostgresStore) RecordRenderFailure(ctx context.Context, eventID, incidentID, reason string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO render_failures (event_id, incident_id, reason) VALUES ($1, $2, $3)
ON CONFLICT (event_id) DO UPDATE SET reason = excluded.reason, failed_at = now()`, eventID, incidentID, reason)
	if err != nil {
		return fmt.Errorf("record render failure of %s: %w", eventID, err)
	}
	return nil
}

// RegisterKey implements Store.
func (s *PostgresStore) RegisterKey(ctx context.Context, keyID string, pub ed25519.PublicKey) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signing_keys (key_id, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		keyID, []byte(pub))
	if err != nil {
		return fmt.Errorf("register signing key %s: %w", keyID, err)
	}
	return nil
}

// RegisterCertificate implements Store.
func (s *PostgresStore) RegisterCertificate(ctx context.Context, cert *x509.Certificate) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signing_certificates (cert_sha256, subject, not_after, der)
VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, pades.Fingerprint(cert), cert.Subject.String(), cert.NotAfter, cert.Raw)
	if err != nil {
		return fmt.Errorf("register signing certificate: %w", err)
	}
	return nil
}

// DevCertificate implements Store.
func (s *PostgresStore) DevCertificate(ctx context.Context, freshCert, freshKey []byte) (certDER, keyPKCS8 []byte, err error) {
	err = s.pool.QueryRow(ctx, `WITH ins AS (
	INSERT INTO dev_signing_cert (cert_der, key_pkcs8) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING cert_der, key_pkcs8)
SELECT cert_der, key_pkcs8 FROM ins UNION ALL SELECT cert_der, key_pkcs8 FROM dev_signing_cert LIMIT 1`,
		freshCert, freshKey).Scan(&certDER, &keyPKCS8)
	if pg.IsNoRows(err) { // another replica committed its certificate after this statement's snapshot
		err = s.pool.QueryRow(ctx, `SELECT cert_der, key_pkcs8 FROM dev_signing_cert`).Scan(&certDER, &keyPKCS8)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dev signing certificate: %w", err)
	}
	return certDER, keyPKCS8, nil
}

// Certificates lists the recorded signing certificates, oldest first.
func (s *PostgresStore) Certificates(ctx context.Context) ([]Certificate, error) {
	rows, err := s.pool.Query(ctx, `SELECT cert_sha256, subject, not_after, der, created_at FROM signing_certificates
ORDER BY created_at, cert_sha256`)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	certs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Certificate, error) {
		var c Certificate
		var der []byte
		err := r.Scan(&c.SHA256, &c.Subject, &c.NotAfter, &der, &c.CreatedAt)
		c.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return certs, nil
}

// DevSeed implements Store.
func (s *PostgresStore) DevSeed(ctx context.Context, fresh []byte) ([]byte, error) {
	var seed []byte
	err := s.pool.QueryRow(ctx, `WITH ins AS (
	INSERT INTO dev_signing_key (seed) VALUES ($1) ON CONFLICT DO NOTHING RETURNING seed)
SELECT seed FROM ins UNION ALL SELECT seed FROM dev_signing_key LIMIT 1`, fresh).Scan(&seed)
	if pg.IsNoRows(err) { // another replica committed its seed after this statement's snapshot
		err = s.pool.QueryRow(ctx, `SELECT seed FROM dev_signing_key`).Scan(&seed)
	}
	if err != nil {
		return nil, fmt.Errorf("dev signing key: %w", err)
	}
	return seed, nil
}

const insertRedaction = `INSERT INTO report_redactions (report_id, version, pdf_sha256, data_sha256, cert_sha256,
	size_bytes, pages, pdf, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// RedactedPDF returns the redacted rendition of version n of a report (its
// version row, the rendition's SHA-256 and bytes); ErrNotFound when there is none.
func (s *PostgresStore) RedactedPDF(ctx context.Context, reportID string, n int) (Version, string, []byte, error) {
	var (
		sum string
		pdf []byte
	)
	v, err := scanVersion(s.pool.QueryRow(ctx, `SELECT v.report_id::text, v.incident_id::text, v.review_id, v.version, v.event_id, v.pdf_sha256, v.data_sha256,
	v.size_bytes, v.pages, v.object_bucket, v.object_key, v.signature, v.key_id, v.published_at, coalesce(v.cert_sha256, ''),
	r.pdf_sha256, r.pdf
FROM report_versions v JOIN report_redactions r USING (report_id, version)
WHERE v.report_id::text = $1 AND v.version = $2`, reportID, n), &sum, &pdf)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return v, "", nil, fmt.Errorf("get redacted rendition of %s version %d: %w", reportID, n, err)
	}
	return v, sum, pdf, err
}

const versionCols = `report_id::text, incident_id::text, review_id, version, event_id, pdf_sha256, data_sha256,
	size_bytes, pages, object_bucket, object_key, signature, key_id, published_at, coalesce(cert_sha256, '')`

func scanVersion(row pgx.Row, extra ...any) (Version, error) {
	var v Version
	dst := append([]any{&v.ReportID, &v.IncidentID, &v.ReviewID, &v.Version, &v.EventID, &v.PDFSHA256,
		&v.DataSHA256, &v.SizeBytes, &v.Pages, &v.ObjectBucket, &v.ObjectKey, &v.Signature, &v.KeyID,
		&v.PublishedAt, &v.CertSHA256}, extra...)
	err := row.Scan(dst...)
	if pg.IsNoRows(err) {
		return v, ErrNotFound
	}
	return v, err
}

// Reports lists reports, optionally of one incident, with their latest version.
func (s *PostgresStore) Reports(ctx context.Context, incidentID string) ([]Report, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.report_id::text, r.incident_id::text, r.created_at FROM reports r
WHERE $1 = '' OR r.incident_id::text = $1 ORDER BY r.created_at, r.report_id LIMIT 1000`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Report, error) {
		var rep Report
		err := r.Scan(&rep.ReportID, &rep.IncidentID, &rep.CreatedAt)
		return rep, err
	})
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	for i := range out {
		v, err := s.version(ctx, out[i].ReportID, 0)
		if err == nil {
			out[i].Latest = &v
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}

// Report returns a report and every version of it, oldest first.
func (s *PostgresStore) Report(ctx context.Context, reportID string) (Report, []Version, error) {
	var rep Report
	err := s.pool.QueryRow(ctx, `SELECT report_id::text, incident_id::text, created_at FROM reports WHERE report_id::text = $1`,
		reportID).Scan(&rep.ReportID, &rep.IncidentID, &rep.CreatedAt)
	if pg.IsNoRows(err) {
		return rep, nil, ErrNotFound
	}
	if err != nil {
		return rep, nil, fmt.Errorf("get report %s: %w", reportID, err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+versionCols+` FROM report_versions WHERE report_id = $1 ORDER BY version`, rep.ReportID)
	if err != nil {
		return rep, nil, fmt.Errorf("list versions of %s: %w", reportID, err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Version, error) { return scanVersion(r) })
	if err != nil {
		return rep, nil, fmt.Errorf("list versions of %s: %w", reportID, err)
	}
	if len(vs) > 0 {
		rep.Latest = &vs[len(vs)-1]
	}
	return rep, vs, nil
}

// version returns version n of a report, or the latest when n is 0.
func (s *PostgresStore) version(ctx context.Context, reportID string, n int) (Version, error) {
	v, err := scanVersion(s.pool.QueryRow(ctx, `SELECT `+versionCols+` FROM report_versions
WHERE report_id::text = $1 AND ($2 = 0 OR version = $2) ORDER BY version DESC LIMIT 1`, reportID, n))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return v, fmt.Errorf("get report %s version %d: %w", reportID, n, err)
	}
	return v, err
}

// VersionPDF returns version n (0: the latest) of a report with its PDF bytes.
func (s *PostgresStore) VersionPDF(ctx context.Context, reportID string, n int) (Version, []byte, error) {
	var pdf []byte
	v, err := scanVersion(s.pool.QueryRow(ctx, `SELECT `+versionCols+`, pdf FROM report_versions
WHERE report_id::text = $1 AND ($2 = 0 OR version = $2) ORDER BY version DESC LIMIT 1`, reportID, n), &pdf)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return v, nil, fmt.Errorf("get report %s version %d: %w", reportID, n, err)
	}
	return v, pdf, err
}

// VersionByDigest returns the version whose PDF has the given SHA-256.
func (s *PostgresStore) VersionByDigest(ctx context.Context, pdfSHA256 string) (Version, error) {
	v, err := scanVersion(s.pool.QueryRow(ctx, `SELECT `+versionCols+` FROM report_versions
WHERE pdf_sha256 = $1 ORDER BY published_at LIMIT 1`, pdfSHA256))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return v, fmt.Errorf("find version by digest: %w", err)
	}
	return v, err
}

// Keys lists the recorded public keys, oldest first.
func (s *PostgresStore) Keys(ctx context.Context) ([]Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT key_id, algorithm, public_key, created_at FROM signing_keys ORDER BY created_at, key_id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) {
		var k Key
		var pub []byte
		err := r.Scan(&k.KeyID, &k.Algorithm, &pub, &k.CreatedAt)
		k.PublicKey = pub
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return keys, nil
}

// Ping checks the database for readiness probes.
func (s *PostgresStore) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }
