package postgres

import "github.com/jackc/pgx/v5/pgxpool"

// Pool is the store's connection pool, for a batch consumer that runs many
// of the store's transactions inside one (bus.InOneTx).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
