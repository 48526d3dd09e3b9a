package feed

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/secretlog/secretlog/events"
)

// MaxCountedBehind bounds the count behind secretlog_feed_events_behind: a
// scrape never counts more of the log than this.
const MaxCountedBehind = 100000

// lagTimeout bounds the query a scrape of the forwarder's lag runs.
const lagTimeout = 2 * time.Second

// RegisterMetrics exports the change feed's metrics with reg. For a
// forwarder f (nil: none in this process): secretlog_feed_published_total,
// secretlog_feed_position, and, read from q at each scrape,
// secretlog_feed_events_behind and secretlog_feed_lag_seconds. For a broker
// b (nil: none): secretlog_feed_broker_events_total,
// secretlog_feed_broker_position, secretlog_subscriptions_active,
// secretlog_subscriptions_cut_total and secretlog_subscriptions_refused_total.
// Their labels are fixed names: no id, no value.
func RegisterMetrics(reg prometheus.Registerer, q events.Querier, f *Forwarder, b *Broker) {
	if f != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "secretlog_feed_published_total",
				Help: "Messages the change feed's forwarder published from this process (repeats after a crash included)."},
				func() float64 { return float64(f.published.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "secretlog_feed_position",
				Help: "Global log position of the last event the forwarder published from this process (0: none yet)."},
				func() float64 { return float64(f.position.Load()) }),
			&lagCollector{q: q,
				behind: prometheus.NewDesc("secretlog_feed_events_behind",
					"Committed events the change feed's forwarder has not published yet (its checkpoint in projection_offsets; counted up to 100000).", nil, nil),
				lag: prometheus.NewDesc("secretlog_feed_lag_seconds",
					"Age of the oldest committed event the change feed's forwarder has not published yet (0: caught up).", nil, nil)},
		)
	}
	if b != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "secretlog_feed_broker_events_total",
				Help: "Events this server's broker received from its source (the log tail, or JetStream)."},
				func() float64 { return float64(b.received.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "secretlog_feed_broker_position",
				Help: "Global log position of the last event this server's broker received (0: none yet)."},
				func() float64 { return float64(b.position.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "secretlog_subscriptions_active",
				Help: "Open GraphQL subscriptions of the change feed on this server (replaying or live)."},
				func() float64 { return float64(b.Open()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "secretlog_subscriptions_cut_total",
				Help: "Subscriptions cut off for falling more than SECRETLOG_SUBSCRIPTION_BUFFER events behind."},
				func() float64 { return float64(b.cut.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "secretlog_subscriptions_refused_total",
				Help: "Subscriptions refused at SECRETLOG_MAX_CALLER_SUBSCRIPTIONS or SECRETLOG_MAX_SUBSCRIPTIONS."},
				func() float64 { return float64(b.refused.Load()) }),
		)
	}
}

// lagCollector reads how far the forwarder's checkpoint is behind the log.
type lagCollector struct {
	q           events.Querier
	behind, lag *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.behind
	ch <- c.lag
}

// lagSQL counts the events after the forwarder's consumer group's offset
// (the order and condition of events.LogSchemaAdapter's SelectQuery), and
// the age of the oldest, in the database's clock.
const lagSQL = `WITH o AS (
    SELECT coalesce((SELECT last_processed_transaction_id FROM ` + events.OffsetsTable + ` WHERE consumer_group = $1), '0'::xid8) AS xid,
           coalesce((SELECT offset_acked FROM ` + events.OffsetsTable + ` WHERE consumer_group = $1), 0) AS pos
), behind AS (
    SELECT e.occurred_at FROM event_log e, o
    WHERE (e.transaction_id, e.position) > (o.xid, o.pos)
    ORDER BY e.transaction_id, e.position
    LIMIT $2
)
SELECT count(*), coalesce(greatest(extract(epoch FROM now() - min(occurred_at)), 0), 0)::float8 FROM behind`

// Collect reports nothing when the database does not answer: a scrape of
// the process's other metrics still succeeds.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	var n int64
	var lag float64
	if err := c.q.QueryRow(ctx, lagSQL, ForwarderName, MaxCountedBehind).Scan(&n, &lag); err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.behind, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag)
}
