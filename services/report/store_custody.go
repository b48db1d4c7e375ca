package report

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/report/custody"
)

const (
	lastCustody = `SELECT report_id::text, seq, at, action, version, actor, detail, pdf_sha256, prev_sha256, entry_sha256
FROM custody_log WHERE report_id = $1 ORDER BY seq DESC LIMIT 1`
	insertCustody = `INSERT INTO custody_log (report_id, seq, at, action, version, actor, detail, pdf_sha256, prev_sha256, entry_sha256)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	listCustody = `SELECT report_id::text, seq, at, action, version, actor, detail, pdf_sha256, prev_sha256, entry_sha256
FROM custody_log WHERE report_id::text = $1 ORDER BY seq`
)

func scanCustody(row pgx.Row) (custody.Entry, error) {
	var e custody.Entry
	err := row.Scan(&e.ReportID, &e.Seq, &e.At, &e.Action, &e.Version, &e.Actor, &e.Detail, &e.PDFSHA256, &e.Prev, &e.Hash)
	e.At = e.At.UTC()
	return e, err
}

// appendCustody chains e onto the report's log inside tx. The caller holds
// the report's row lock, which serialises appends per report.
func appendCustody(ctx context.Context, tx pgx.Tx, e custody.Entry) (custody.Entry, error) {
	var prev *custody.Entry
	last, err := scanCustody(tx.QueryRow(ctx, lastCustody, e.ReportID))
	switch {
	case err == nil:
		prev = &last
	case !pg.IsNoRows(err):
		return e, fmt.Errorf("read custody log of %s: %w", e.ReportID, err)
	}
	e = custody.Next(prev, e)
	if _, err := tx.Exec(ctx, insertCustody, e.ReportID, e.Seq, e.At, e.Action, e.Version, e.Actor, e.Detail,
		e.PDFSHA256, e.Prev, e.Hash); err != nil {
		return e, fmt.Errorf("append custody entry %d of %s: %w", e.Seq, e.ReportID, err)
	}
	return e, nil
}

// AppendCustody appends e to its report's custody log in a transaction of its
// own; ErrNotFound when the report does not exist.
func (s *PostgresStore) AppendCustody(ctx context.Context, e custody.Entry) (custody.Entry, error) {
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `SELECT report_id::text FROM reports WHERE report_id::text = $1 FOR UPDATE`, e.ReportID).Scan(&id)
		if pg.IsNoRows(err) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock report %s: %w", e.ReportID, err)
		}
		e.ReportID = id
		e, err = appendCustody(ctx, tx, e)
		return err
	})
	return e, err
}

// Custody returns a report's custody log in sequence order; ErrNotFound when
// the report does not exist.
func (s *PostgresStore) Custody(ctx context.Context, reportID string) ([]custody.Entry, error) {
	if _, _, err := s.Report(ctx, reportID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, listCustody, reportID)
	if err != nil {
		return nil, fmt.Errorf("read custody log of %s: %w", reportID, err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (custody.Entry, error) { return scanCustody(r) })
	if err != nil {
		return nil, fmt.Errorf("read custody log of %s: %w", reportID, err)
	}
	return entries, nil
}
