package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/config"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

// Retention defaults of intake's own tables. The inbox defaults to what
// processed_events keeps, the platform's dedupe record.
const (
	DefaultRejectsRetention = 90 * 24 * time.Hour
	DefaultInboxRetention   = pg.DefaultProcessedEventsRetention
	retentionBatch          = 10000
)

// loadRetention reads REJECTS_RETENTION and INBOX_RETENTION. INBOX_RETENTION
// below the INCIDENTS stream's max age is refused: the inbox is what makes a
// redelivery a duplicate, so forgetting a key while the stream can still
// deliver its message again would register that incident twice.
func loadRetention(l *config.Loader) postgres.Retention {
	r := postgres.Retention{
		Rejects: l.Duration("REJECTS_RETENTION", DefaultRejectsRetention.String()),
		Inbox:   l.Duration("INBOX_RETENTION", DefaultInboxRetention.String()),
		Batch:   retentionBatch,
	}
	if floor := bus.DefaultLimits[bus.StreamIncidents].MaxAge; r.Inbox > 0 && r.Inbox < floor {
		l.Fail(fmt.Errorf("INBOX_RETENTION=%s: want at least %s, the longest the INCIDENTS stream keeps a message, or a late redelivery registers twice",
			r.Inbox, floor))
	}
	return r
}

// runRetention prunes intake's tables (postgres.Prune) every `every` until ctx
// is cancelled, then returns nil. A failed prune is logged and tried again at
// the next tick: it must not stop the service.
func runRetention(ctx context.Context, pool *pgxpool.Pool, r postgres.Retention, every time.Duration, log *zap.Logger) error {
	log = log.Named("retention")
	if r.Batch <= 0 {
		r.Batch = retentionBatch
	}
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rejects, inbox, err := postgres.Prune(ctx, pool, r, time.Now())
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("prune of intake tables failed; will retry", zap.Duration("every", every), zap.Error(err))
		case rejects > 0 || inbox > 0:
			log.Info("pruned intake tables", zap.Int64("rejects", rejects), zap.Int64("inbox", inbox))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
