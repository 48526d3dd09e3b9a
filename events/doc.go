// Package events is secretlog's source of truth: the append-only, encrypted
// event log.
//
// It holds the envelope every event travels in, the versioned domain event
// types and their codec, envelope encryption of secret values (per-stream data
// keys wrapped by a keyring), the Store interface with its PostgreSQL
// implementation (tamper-evident: per-stream hash chains, log checkpoints and
// Verify), and the Watermill schema adapter that lets projections
// consume the log table itself as a topic, in commit order.
package events
