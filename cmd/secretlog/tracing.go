package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/secretlog/secretlog/tracing"
)

// flushTraces sends the spans still queued when serve stops (a no-op when
// OTEL_EXPORTER_OTLP_ENDPOINT is unset).
func flushTraces(shutdown func(context.Context) error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		log.Warn("flushing traces", "error", err.Error())
	}
}

// logTracing says where spans go, at start.
func logTracing(log *slog.Logger) {
	if tracing.Enabled() {
		log.Info("tracing: exporting spans over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)")
	}
}
