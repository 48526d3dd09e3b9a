package projections

import (
	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
)

// KeyShredding destroys data keys as the log says: the keys of the versions
// a VersionsDestroyed event names, and every key of a resource whose final
// deletion it records (crypto-shredding). It is written wherever events are
// projected (in the appending transaction with the PostgreSQL log, in the
// runner's transaction with a remote one), so a key is gone exactly when
// the event that destroys it is in the read models. It owns no read-model
// table: a rebuild does not replay it (the keys it destroyed stay destroyed).
type KeyShredding struct{ Keys *events.KeyStore }

// Name implements Projection.
func (KeyShredding) Name() string { return "key_shredding" }

// Tables implements Projection: none.
func (KeyShredding) Tables() []string { return nil }

// Shadow implements Projection: a rebuild destroys nothing.
func (KeyShredding) Shadow(string) Projection { return KeyShredding{} }

// Queue implements Projection.
func (p KeyShredding) Queue(b *pgx.Batch, changes []commands.Change) error {
	if p.Keys == nil {
		return nil
	}
	for _, c := range changes {
		id := c.Record.Stream
		switch ev := c.Event.(type) {
		case *events.VersionsDestroyed:
			for _, n := range ev.Versions {
				p.Keys.QueueDestroy(b, commands.KeyName(id, n))
			}
		case *events.SecretDeleted, *events.UserSecretDeleted, *events.TrustedSecretDeleted:
			p.Keys.QueueDestroyAll(b, id)
		}
	}
	return nil
}
