package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/query"
)

// fuzzAdmin reads the whole of domain d1, where operatorRows live.
var fuzzAdmin = auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "fuzz", Subject: "fuzz"}

// fuzzLimits keep each input cheap: whatever the input, the translator and
// the database must answer (or refuse) within them.
var fuzzLimits = query.Limits{StatementTimeout: time.Second}

// decodeFuzzJSON decodes input as GraphQL variables are decoded (numbers as
// json.Number); ok is false for anything that is not a JSON object.
func decodeFuzzJSON(input []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

// requireNotInternal fails unless err is nil or a QueryError: anything else
// would reach the caller as INTERNAL.
func requireNotInternal(t *testing.T, input []byte, err error) {
	t.Helper()
	var qe *query.Error
	if err != nil && !errors.As(err, &qe) {
		t.Fatalf("input %s: an error that is not a QueryError (the API's INTERNAL): %T %v", input, err, err)
	}
}

// FuzzStatQuery runs statistics queries, parsed and executed against
// PostgreSQL: malformed input must be a QueryError (INVALID_ARGUMENT or
// RESOURCE_EXHAUSTED), never a panic, an SQL error or anything INTERNAL.
// The seed corpus is testdata/fuzz/FuzzStatQuery; CI fuzzes it briefly
// (.ci/run).
func FuzzStatQuery(f *testing.F) {
	pool := newQueryDB(f)
	insertSecrets(f, pool, operatorRows())
	reader := newReader(pool).WithLimits(fuzzLimits)
	for _, seed := range []string{
		`{"aggregate":[{"count":{}}]}`,
		`{"distinct":"provider","page":{"limit":2}}`,
		`{"aggregate":[{"group":{"keys":[{"key":"provider","name":"p"}],"fields":[{"operator":"count","name":"n"}]}},{"sort":[{"key":"n","desc":true}]}]}`,
		`{"filter":[{"k":"tags.tier","v":1,"o":"gte"}],"aggregate":[{"group":{"fields":[{"key":"secretId","name":"ids","operator":"push"}]}},{"unwind":{"path":"ids"}}]}`,
		`{"aggregate":[{"group":{"keys":[{"key":"createdAt","name":"m","date_format":"%Y-%m"}],"fields":[{"key":"version","operator":"sum","name":"s"}]}},{"project":{"fields":[{"key":"s","name":"t"}]}}]}`,
		`{"filter":[{"k":"createdAt","v":"now-1d","o":"timediff_gte"}],"aggregate":[{"count":{"name":"n"}}]}`,
		`{"filter":[{"k":"name","v":"[","o":"regex"}],"aggregate":[{"count":{}}]}`,
		`{"filter":[{"k":"version","v":1e300,"o":"lt"}],"distinct":"name"}`,
		`{"aggregate":[{"match":{"filter":[{"k":"name","v":["a","b"],"o":"contain_in"}]}},{"limit":1},{"skip":1}]}`,
		`{"keyword":"prod","aggregate":[{"group":{"keys":["provider"],"fields":[{"key":"tags.env","operator":"add_to_set","name":"envs"}]}}]}`,
		`{"aggregate":[{"group":{"keys":["workspaceId"],"fields":[{"key":"tags","operator":"merge_objects","name":"t"}]}},{"match":{"filter":[{"k":"t.env","v":"PROD"}]}}]}`,
		`{"aggregate":[{"group":{"fields":[{"operator":"push","name":"p","fields":[{"key":"provider","name":"x"}]}]}},{"match":{"filter":[{"k":"p","v":{"x":"aws"},"o":"match"}]}}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		m, ok := decodeFuzzJSON(input)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := reader.Stat(ctx, fuzzAdmin, projections.SecretResource, m)
		requireNotInternal(t, input, err)
	})
}

// FuzzListQuery is FuzzStatQuery for list queries: filter, filter_or,
// sort, page, keyword, only and minimal as the API passes them.
func FuzzListQuery(f *testing.F) {
	pool := newQueryDB(f)
	insertSecrets(f, pool, operatorRows())
	reader := newReader(pool).WithLimits(fuzzLimits)
	for _, seed := range []string{
		`{"filter":[{"k":"name","v":"alpha","o":"contain"}],"sort":[{"key":"createdAt","desc":true}],"page":{"start":1,"limit":2}}`,
		`{"filter":[{"k":"tags.env","v":["prod",null],"o":"in"}],"keyword":"a b"}`,
		`{"filterOr":[{"k":"version","v":"2","o":"gte"},{"k":"workspaceId","v":false,"o":"exists"}]}`,
		`{"filter":[{"k":"createdAt","v":"2024-02-01","o":"datetime_lt"}],"sort":[{"key":"tags.tier"}]}`,
		`{"filter":[{"k":"name","v":["^a","(b"],"o":"regex_in"}]}`,
		`{"filter":[{"k":"tags.list","v":{"a.b":1,"c":null},"o":"match"}],"keyword":"alpha STAGING"}`,
		`{"filterOr":[{"k":"name","v":["ALPHA-prod",null],"o":"in"},{"k":"tags.env","v":["PROD"],"o":"not_in"}],"only":["name","tags.x"],"minimal":true}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		m, ok := decodeFuzzJSON(input)
		if !ok {
			return
		}
		var in struct {
			Filter, FilterOr []struct {
				K string
				V any
				O string
			}
			Sort []struct {
				Key  string
				Desc bool
			}
			Page struct {
				Start, Limit int
			}
			Keyword   string
			CountOnly bool
			Only      []string
			Minimal   bool
		}
		raw, _ := json.Marshal(m)
		if json.Unmarshal(raw, &in) != nil {
			return
		}
		var q query.Input
		for _, c := range in.Filter {
			q.Filter = append(q.Filter, query.Filter{Key: c.K, Value: c.V, Op: c.O})
		}
		for _, c := range in.FilterOr {
			q.FilterOr = append(q.FilterOr, query.Filter{Key: c.K, Value: c.V, Op: c.O})
		}
		for _, s := range in.Sort {
			q.Sort = append(q.Sort, query.SortKey{Key: s.Key, Desc: s.Desc})
		}
		q.Page = query.Page{Start: in.Page.Start, Limit: in.Page.Limit}
		q.Keyword, q.CountOnly, q.Only, q.Minimal = in.Keyword, in.CountOnly, in.Only, in.Minimal
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err := reader.Secrets(ctx, fuzzAdmin, q)
		requireNotInternal(t, input, err)
	})
}
