package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// inboxKey is what makes a consumed message unique for intake: the subject
// (which names the source), the sender's message id and the digest of the
// bytes. Two sources may both send "INC-1"; one source may reuse an id for
// other content. Neither is a redelivery.
type inboxKey struct {
	subject, messageID, sha string
}

func keyOf(m Message) inboxKey {
	sum := sha256.Sum256(m.Raw)
	return inboxKey{subject: m.Subject, messageID: m.EventID, sha: hex.EncodeToString(sum[:])}
}

// The data-modifying CTE's EXISTS sees the table as it was before the
// insert: "reused" means an earlier message had the id with other bytes.
const markInboxSQL = `WITH want AS (
	SELECT DISTINCT * FROM unnest($1::text[], $2::text[], $3::text[]) AS w(subject, message_id, payload_sha256)
), ins AS (
	INSERT INTO inbox (subject, message_id, payload_sha256) SELECT subject, message_id, payload_sha256 FROM want
	ON CONFLICT DO NOTHING RETURNING subject, message_id, payload_sha256
)
SELECT ins.subject, ins.message_id, ins.payload_sha256, EXISTS (SELECT 1 FROM inbox o
	WHERE o.subject = ins.subject AND o.message_id = ins.message_id AND o.payload_sha256 <> ins.payload_sha256)
FROM ins`

// markInbox records the keys inside tx and returns those that were new, each
// with whether an earlier message had the same subject and id but other bytes.
// Keys missing from the result were handled before.
func markInbox(ctx context.Context, tx pgx.Tx, keys []inboxKey) (map[inboxKey]bool, error) {
	subjects, ids, shas := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		subjects[i], ids[i], shas[i] = k.subject, k.messageID, k.sha
	}
	rows, err := tx.Query(ctx, markInboxSQL, subjects, ids, shas)
	if err != nil {
		return nil, fmt.Errorf("mark %d messages received: %w", len(keys), err)
	}
	fresh := make(map[inboxKey]bool, len(keys))
	var (
		k      inboxKey
		reused bool
	)
	_, err = pgx.ForEachRow(rows, []any{&k.subject, &k.messageID, &k.sha, &reused}, func() error {
		fresh[k] = reused
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark %d messages received: %w", len(keys), err)
	}
	return fresh, nil
}
