package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

// DefaultStream is the JetStream stream holding the feed.
const DefaultStream = "SECRETLOG"

// DuplicateWindow is how long JetStream remembers message ids
// (Nats-Msg-Id, the event id) to drop a forwarder's repeats.
const DuplicateWindow = 10 * time.Minute

// Connect opens a NATS connection that keeps reconnecting.
func Connect(url, name string) (*nats.Conn, error) {
	return nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
}

// EnsureStream creates the feed's stream (subjects secretlog.>, file
// storage, limits retention, DuplicateWindow) unless it exists.
func EnsureStream(nc *nats.Conn, name string) error {
	js, err := nc.JetStream()
	if err != nil {
		return err
	}
	if _, err := js.StreamInfo(name); err == nil {
		return nil
	} else if !errors.Is(err, nats.ErrStreamNotFound) {
		return fmt.Errorf("feed: stream %s: %w", name, err)
	}
	_, err = js.AddStream(&nats.StreamConfig{
		Name:        name,
		Description: "secretlog change feed: one message per committed event, never a value",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     nats.FileStorage,
		Retention:   nats.LimitsPolicy,
		Duplicates:  DuplicateWindow,
	})
	if err != nil && !errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("feed: create stream %s: %w", name, err)
	}
	return nil
}

// NewNATSPublisher is a watermill-nats publisher to JetStream on nc: each
// message's topic is its subject (Subject), its metadata NATS headers, and
// its UUID (the event id) the Nats-Msg-Id, so JetStream drops a repeat
// within DuplicateWindow. Publishing waits for JetStream's acknowledgement.
func NewNATSPublisher(nc *nats.Conn, logger *slog.Logger) (message.Publisher, error) {
	return wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{TrackMsgID: true},
	}, watermill.NewSlogLogger(logger))
}

// RunNATS feeds b from the JetStream stream until ctx ends, then closes b:
// an ordered (in-order, gap-free, ephemeral) consumer of every subject from
// the messages published from now on. Repeats a forwarder published outside
// the duplicate window reach the broker too; subscribers skip any event at
// or before one they already had.
func RunNATS(ctx context.Context, nc *nats.Conn, stream string, b *Broker, logger *slog.Logger) {
	defer b.Close()
	for ctx.Err() == nil {
		err := runNATS(ctx, nc, stream, b, logger)
		if err != nil && ctx.Err() == nil {
			logger.Warn("feed: JetStream subscription", "error", err.Error())
			sleep(ctx, time.Second)
		}
	}
}

func runNATS(ctx context.Context, nc *nats.Conn, stream string, b *Broker, logger *slog.Logger) error {
	js, err := nc.JetStream()
	if err != nil {
		return err
	}
	sub, err := js.Subscribe(SubjectPrefix+".>", func(m *nats.Msg) {
		env, err := Decode(m.Data)
		if err != nil {
			logger.Warn("feed: undecodable message on the stream", "subject", m.Subject, "error", err.Error())
			return
		}
		b.Publish(env)
	}, nats.BindStream(stream), nats.OrderedConsumer(), nats.DeliverNew())
	if err != nil {
		return err
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}
