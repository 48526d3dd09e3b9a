package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	// OK: every event's hash and version chain to its stream's previous
	// event, and every checkpoint matches the events before it.
	OK bool
	// EventsChecked counts the events Verify read, the broken one included.
	EventsChecked int64
	// CheckpointsChecked counts the log checkpoints compared, the broken one included.
	CheckpointsChecked int64
	// FirstBrokenPosition is the log position of the first broken link met
	// in commit order (0 when OK): an event whose version or hash does not
	// follow its stream's previous event, or a checkpoint (its event's
	// position) whose event count or hash differs from the events before it.
	FirstBrokenPosition int64
	// Reason says what broke ("hash mismatch", "version gap", ...). It never
	// carries event data.
	Reason string
}

// Reasons a link is broken.
const (
	brokenHash          = "hash mismatch"
	brokenVersionGap    = "version gap"
	brokenVersionOrder  = "version out of order"
	brokenMissing       = "events missing before checkpoint"
	brokenAdded         = "events added before checkpoint"
	brokenCheckpointSum = "checkpoint hash mismatch"
)

// errBroken stops the walk at the first broken link.
var errBroken = errors.New("events: broken link")

// verifyPage is how many events one query of Verify reads (streamed row by row).
const verifyPage = 2000

type streamHead struct {
	version int64
	hash    []byte
}

// verifier is Verify's state: what the log looked like up to the last event read.
type verifier struct {
	report      VerifyReport
	streams     map[string]streamHead
	logHash     []byte
	events      int64 // events folded into logHash
	checkpoints *checkpointReader
}

func (v *verifier) broken(position int64, reason string) error {
	v.report.FirstBrokenPosition = position
	v.report.Reason = reason
	return errBroken
}

// checkpointsBefore compares the checkpoints at cursors before c (all of
// them when c is nil) with the log read so far.
func (v *verifier) checkpointsBefore(ctx context.Context, c *Cursor) error {
	if v.checkpoints == nil {
		return nil // a domain's walk: checkpoints cover the whole log
	}
	for {
		cp, err := v.checkpoints.peek(ctx)
		if err != nil {
			return err
		}
		if cp == nil || (c != nil && !cp.Cursor.Before(*c)) {
			return nil
		}
		v.checkpoints.next()
		v.report.CheckpointsChecked++
		switch {
		case v.events < cp.Events:
			return v.broken(cp.Cursor.Position, brokenMissing)
		case v.events > cp.Events:
			return v.broken(cp.Cursor.Position, brokenAdded)
		case !bytes.Equal(v.logHash, cp.Hash):
			return v.broken(cp.Cursor.Position, brokenCheckpointSum)
		}
	}
}

// event checks one stored event against its stream's previous one and folds
// it into the log hash.
func (v *verifier) event(ctx context.Context, c Cursor, id, stream string, version int64, typ string,
	occurredAt time.Time, data, metadata, hash []byte) error {
	if err := v.checkpointsBefore(ctx, &c); err != nil {
		return err
	}
	v.report.EventsChecked++
	head := v.streams[stream]
	switch {
	case version > head.version+1:
		return v.broken(c.Position, brokenVersionGap)
	case version <= head.version:
		return v.broken(c.Position, brokenVersionOrder)
	}
	if !bytes.Equal(EventHash(head.hash, stream, version, id, typ, occurredAt, data, metadata), hash) {
		return v.broken(c.Position, brokenHash)
	}
	v.streams[stream] = streamHead{version: version, hash: hash}
	v.logHash = LogHash(v.logHash, hash)
	v.events++
	return nil
}

// Verify walks the whole log in commit order and checks every link: each
// event's version follows its stream's previous event and its stored hash is
// EventHash over its stored columns chained to that event's hash; each log
// checkpoint's event count and hash match the events before it. It reports
// the first broken link met in commit order, which for a changed event is
// that event itself: everything before it is intact.
//
// The walk covers transactions below pg_snapshot_xmin when it starts (events
// appended meanwhile are left for the next run) and keeps one version and
// hash per stream in memory. progress, when not nil, receives events read so
// far and the total. An error means the log could not be read, not that it
// is broken.
//
// What it cannot see: events removed from the end of the log after the last
// checkpoint, and a history rewritten consistently together with its
// checkpoints by someone who can write both tables (anchor checkpoint hashes
// elsewhere against that).
func (s *PostgresStore) Verify(ctx context.Context, progress func(done, total int64)) (VerifyReport, error) {
	return s.verify(ctx, "", progress)
}

// VerifyDomain checks the hash and version chains of the streams of one
// domain (the events whose metadata names it as tenant.domain_id), in commit
// order, and nothing else: EventsChecked counts only that domain's events,
// and log checkpoints, which cover every domain, are not compared (the whole
// log is the CLI's and an operator's: secretlog verify). An event moved to
// another domain by rewriting its metadata breaks its stream's chain, so it
// is still found.
func (s *PostgresStore) VerifyDomain(ctx context.Context, domainID string, progress func(done, total int64)) (VerifyReport, error) {
	if domainID == "" {
		return VerifyReport{}, errors.New("events: VerifyDomain needs a domain")
	}
	return s.verify(ctx, domainID, progress)
}

// verify walks the log, or one domain's part of it when domainID is set.
func (s *PostgresStore) verify(ctx context.Context, domainID string, progress func(done, total int64)) (VerifyReport, error) {
	bound, err := s.snapshotXmin(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	boundText := fmt.Sprint(bound)
	// $1 is always the domain ('' for all), so every query binds the same parameters.
	domainFilter := ` AND ($1::text = '' OR (metadata -> 'tenant' ->> 'domain_id') = $1::text)`
	var total int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM event_log WHERE transaction_id < $2::text::xid8`+domainFilter,
		domainID, boundText).Scan(&total); err != nil {
		return VerifyReport{}, err
	}
	v := &verifier{
		streams: map[string]streamHead{},
		logHash: EmptyLogHash(),
	}
	if domainID == "" {
		v.checkpoints = &checkpointReader{s: s, bound: boundText}
	}
	if progress != nil {
		progress(0, total)
	}
	var after Cursor
	for {
		rows, err := s.pool.Query(ctx, `SELECT transaction_id::text::bigint, position, event_id, stream_id, version, type,
			occurred_at, data, metadata, hash
			FROM event_log
			WHERE (transaction_id, position) > ($2::text::xid8, $3::bigint) AND transaction_id < $4::text::xid8`+domainFilter+`
			ORDER BY event_log.transaction_id, event_log.position LIMIT $5`,
			domainID, fmt.Sprint(after.Commit), after.Position, boundText, verifyPage)
		if err != nil {
			return VerifyReport{}, err
		}
		var (
			n                    int
			commit, version      int64
			id                   uuid.UUID
			stream, typ          string
			occurredAt           time.Time
			data, metadata, hash []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&commit, &after.Position, &id, &stream, &version, &typ, &occurredAt, &data, &metadata, &hash}, func() error {
			n++
			after.Commit = uint64(commit)
			return v.event(ctx, after, id.String(), stream, version, typ, occurredAt, data, metadata, hash)
		})
		if errors.Is(err, errBroken) {
			return v.report, nil
		}
		if err != nil {
			return VerifyReport{}, err
		}
		if progress != nil {
			progress(v.report.EventsChecked, max(total, v.report.EventsChecked))
		}
		if n < verifyPage {
			break
		}
	}
	if err := v.checkpointsBefore(ctx, nil); errors.Is(err, errBroken) {
		return v.report, nil
	} else if err != nil {
		return VerifyReport{}, err
	}
	v.report.OK = true
	return v.report, nil
}

// checkpointReader pages through the log checkpoints below bound in commit order.
type checkpointReader struct {
	s     *PostgresStore
	bound string
	buf   []Checkpoint
	after Cursor
	done  bool
}

func (r *checkpointReader) peek(ctx context.Context) (*Checkpoint, error) {
	if len(r.buf) == 0 && !r.done {
		rows, err := r.s.pool.Query(ctx, `SELECT commit::text::bigint, position, events, hash, created_at FROM log_checkpoints
			WHERE (commit, position) > ($1::text::xid8, $2::bigint) AND commit < $3::text::xid8
			ORDER BY log_checkpoints.commit, log_checkpoints.position LIMIT $4`, fmt.Sprint(r.after.Commit), r.after.Position, r.bound, checkpointPage)
		if err != nil {
			return nil, err
		}
		var commit int64
		var cp Checkpoint
		if _, err := pgx.ForEachRow(rows, []any{&commit, &cp.Cursor.Position, &cp.Events, &cp.Hash, &cp.CreatedAt}, func() error {
			cp.Cursor.Commit = uint64(commit)
			r.buf = append(r.buf, cp)
			return nil
		}); err != nil {
			return nil, err
		}
		r.done = len(r.buf) < checkpointPage
		if len(r.buf) > 0 {
			r.after = r.buf[len(r.buf)-1].Cursor
		}
	}
	if len(r.buf) == 0 {
		return nil, nil
	}
	return &r.buf[0], nil
}

func (r *checkpointReader) next() { r.buf = r.buf[1:] }
