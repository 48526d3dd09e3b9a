package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/projections"
)

// schedulerLease names the lease the scheduler runs under.
const schedulerLease = "scheduler"

// Scheduler runs the lifecycle's timed work in one process at a time (under
// a lease): the final deletion of resources whose recovery window ended,
// RotationDue events when rotations come due, and forgetting expired
// clientRequestTokens. Every step is a command as the
// scheduler's SYSTEM identity, decided against the resource's state, so a
// second scheduler (or a restore racing it) never deletes twice.
type Scheduler struct {
	pool   *pgxpool.Pool
	app    *commands.Application
	logger *slog.Logger
	// Every is how often it looks for due work.
	Every time.Duration
	// Now is the clock (the commands' too).
	Now func() time.Time
}

// schedulerActor is who the scheduler's events name.
func schedulerActor(domainID string) commands.Meta {
	return commands.Meta{Actor: auth.Identity{Role: auth.RoleSystem, DomainID: domainID, Subject: "secretlog-scheduler"},
		CorrelationID: "scheduler"}
}

// Run competes for the lease and, while holding it, does due work every Every.
func (s *Scheduler) Run(ctx context.Context) {
	for ctx.Err() == nil {
		held, release, err := projections.TryLease(ctx, s.pool, s.logger, schedulerLease, time.Second)
		if err == nil && held != nil {
			s.logger.Info("scheduler lease taken")
			for held.Err() == nil {
				if err := s.tick(held); err != nil && held.Err() == nil {
					s.logger.Warn("scheduler", "error", err.Error())
				}
				select {
				case <-held.Done():
				case <-time.After(s.Every):
				}
			}
			release()
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

type dueItem struct{ id, domainID string }

// tick runs every due step once.
func (s *Scheduler) tick(ctx context.Context) error {
	now := s.Now().UTC()
	purge, err := s.due(ctx, `SELECT resource_id, domain_id FROM pending_deletions WHERE delete_at <= $1 ORDER BY delete_at LIMIT 500`, now)
	if err != nil {
		return err
	}
	for _, d := range purge {
		_, err := s.app.Purge.Handle(ctx, commands.Purge{Target: commands.Target{Meta: schedulerActor(d.domainID), ID: d.id, Internal: true}})
		if err != nil && commands.CodeOf(err) != commands.NotFound {
			s.logger.Warn("scheduled deletion", "resource", d.id, "error", err.Error())
		}
	}
	rotate, err := s.due(ctx, `SELECT secret_id, domain_id FROM secrets WHERE auto_rotation AND next_rotation_time <= $1
		UNION ALL SELECT user_secret_id, domain_id FROM user_secrets WHERE auto_rotation AND next_rotation_time <= $1 LIMIT 500`, now)
	if err != nil {
		return err
	}
	for _, d := range rotate {
		_, err := s.app.MarkRotationDue.Handle(ctx, commands.MarkRotationDue{Target: commands.Target{Meta: schedulerActor(d.domainID), ID: d.id, Internal: true}})
		if err != nil && commands.CodeOf(err) != commands.NotFound {
			s.logger.Warn("rotation due", "resource", d.id, "error", err.Error())
		}
	}
	return s.purgeTokens(ctx, now)
}

// purgeTokens forgets the clientRequestTokens older than commands.TokenTTL
// (lookups already ignore them), a bounded batch at a time.
func (s *Scheduler) purgeTokens(ctx context.Context, now time.Time) error {
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM request_tokens WHERE ctid IN
			(SELECT ctid FROM request_tokens WHERE created_at <= $1 LIMIT 5000)`, now.Add(-commands.TokenTTL))
		if err != nil || tag.RowsAffected() < 5000 {
			return err
		}
	}
}

func (s *Scheduler) due(ctx context.Context, sql string, now time.Time) ([]dueItem, error) {
	rows, err := s.pool.Query(ctx, sql, now)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (dueItem, error) {
		var d dueItem
		return d, r.Scan(&d.id, &d.domainID)
	})
}
