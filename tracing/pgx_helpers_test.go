package tracing_test

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func pgxStart(sql string) pgx.TraceQueryStartData { return pgx.TraceQueryStartData{SQL: sql} }

func pgxEnd() pgx.TraceQueryEndData {
	return pgx.TraceQueryEndData{CommandTag: pgconn.NewCommandTag("SELECT 1")}
}
