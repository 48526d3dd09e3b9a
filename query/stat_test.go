package query_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/projections"
)

type obj = map[string]any
type arr = []any

func stages(s ...any) obj { return obj{"aggregate": arr(s)} }

func TestStatStages(t *testing.T) {
	t.Parallel()
	pool := newQueryDB(t)
	insertSecrets(t, pool, operatorRows())
	r := newReader(pool)
	byProvider := obj{"group": obj{"keys": arr{obj{"key": "provider"}}, "fields": arr{obj{"operator": "count", "name": "n"}}}}
	cases := []struct {
		name string
		stat obj
		want any // results
	}{
		// count
		{"count", stages(obj{"count": obj{"name": "n"}}), arr{obj{"n": int64(5)}}},
		{"count default name", stages(obj{"count": obj{}}), arr{obj{"count": int64(5)}}},
		{"count after filter", obj{"filter": arr{obj{"k": "provider", "v": "aws", "o": "eq"}}, "aggregate": arr{obj{"count": obj{"name": "n"}}}},
			arr{obj{"n": int64(2)}}},
		{"count of nothing is zero", obj{"filter": arr{obj{"k": "name", "v": "none"}}, "aggregate": arr{obj{"count": obj{"name": "n"}}}},
			arr{obj{"n": int64(0)}}},
		// keyword's conditions join filter_or (python-core): gcp (s2), env prod in any case (s1, s4), "ta" (s2, s4)
		{"filter_or and keyword before aggregation", obj{"filter_or": arr{obj{"k": "provider", "v": "gcp"}, obj{"k": "tags.env", "v": "Prod"}},
			"keyword": "ta", "aggregate": arr{obj{"count": obj{"name": "n"}}}}, arr{obj{"n": int64(3)}}},
		{"keyword alone: any word", obj{"keyword": "gamma ALPHA", "aggregate": arr{obj{"count": obj{"name": "n"}}}}, arr{obj{"n": int64(2)}}},
		{"filter with Cloudforet names and key/value/operator", obj{"filter": arr{obj{"key": "schema_id", "value": "aws", "operator": "contain"}},
			"aggregate": arr{obj{"count": obj{"name": "n"}}}}, arr{obj{"n": int64(2)}}},

		// group keys
		{"group by a key, groups ordered by key, nulls first", stages(byProvider), arr{
			obj{"provider": nil, "n": int64(1)}, obj{"provider": "aws", "n": int64(2)},
			obj{"provider": "azure", "n": int64(1)}, obj{"provider": "gcp", "n": int64(1)}}},
		{"group key names and Cloudforet keys", stages(obj{"group": obj{
			"keys":   arr{obj{"key": "schema_id", "name": "schema"}, obj{"k": "resourceGroup", "n": "rg"}},
			"fields": arr{obj{"o": "count", "n": "n"}}}}), arr{
			obj{"schema": nil, "rg": "DOMAIN", "n": int64(1)}, obj{"schema": nil, "rg": "WORKSPACE", "n": int64(1)},
			obj{"schema": "aws_access_key", "rg": "PROJECT", "n": int64(2)}, obj{"schema": "gcp_sa", "rg": "WORKSPACE", "n": int64(1)}}},
		{"group by a tag: missing and null are one group", stages(obj{"group": obj{"keys": arr{obj{"key": "tags.env", "name": "env"}},
			"fields": arr{obj{"operator": "count", "name": "n"}}}}), arr{
			obj{"env": nil, "n": int64(2)}, obj{"env": "Prod", "n": int64(1)}, obj{"env": "dev", "n": int64(1)}, obj{"env": "prod", "n": int64(1)}}},
		{"date_format %Y-%m", stages(obj{"group": obj{"keys": arr{obj{"key": "createdAt", "name": "month", "date_format": "%Y-%m"}},
			"fields": arr{obj{"operator": "count", "name": "n"}}}}), arr{
			obj{"month": "2024-01", "n": int64(1)}, obj{"month": "2024-02", "n": int64(1)}, obj{"month": "2024-03", "n": int64(1)},
			obj{"month": "2024-04", "n": int64(2)}}},
		{"date_format with literals and every directive", stages(obj{"group": obj{"keys": arr{obj{"key": "created_at", "name": "d",
			"date_format": `Y%Y "m"%m\d%d %H:%M:%S.%L j%j G%G V%V u%u w%w %%`}}}}, obj{"match": obj{"filter": arr{obj{"k": "d", "o": "contain", "v": "m\"01"}}}}),
			arr{obj{"d": `Y2024 "m"01\d10 12:00:00.000 j010 G2024 V02 u3 w4 %`}}},
		{"date_format year, month, day are numbers", stages(obj{"group": obj{"keys": arr{
			obj{"key": "createdAt", "name": "y", "date_format": "year"}, obj{"key": "createdAt", "name": "m", "date_format": "month"},
			obj{"key": "createdAt", "name": "d", "date_format": "day"}}, "fields": arr{obj{"operator": "count", "name": "n"}}}}), arr{
			obj{"y": int64(2024), "m": int64(1), "d": int64(10), "n": int64(1)}, obj{"y": int64(2024), "m": int64(2), "d": int64(15), "n": int64(1)},
			obj{"y": int64(2024), "m": int64(3), "d": int64(20), "n": int64(1)}, obj{"y": int64(2024), "m": int64(4), "d": int64(1), "n": int64(1)},
			obj{"y": int64(2024), "m": int64(4), "d": int64(3), "n": int64(1)}}},
		{"group without keys: one group", stages(obj{"group": obj{"fields": arr{obj{"operator": "sum", "key": "version", "name": "v"}}}}),
			arr{obj{"v": int64(12)}}},
		{"group without keys over no rows: no group", obj{"filter": arr{obj{"k": "name", "v": "none"}},
			"aggregate": arr{obj{"group": obj{"fields": arr{obj{"operator": "count", "name": "n"}}}}}}, arr{}},

		// group fields
		{"count sum average max min", stages(obj{"group": obj{"keys": arr{obj{"key": "provider"}}, "fields": arr{
			obj{"operator": "count", "name": "n"}, obj{"operator": "sum", "key": "version", "name": "sum"},
			obj{"operator": "average", "key": "version", "name": "avg"}, obj{"operator": "max", "key": "createdAt", "name": "latest"},
			obj{"operator": "min", "key": "name", "name": "first_name"}}}}, obj{"match": obj{"filter": arr{obj{"k": "provider", "v": "aws"}}}}),
			arr{obj{"provider": "aws", "n": int64(2), "sum": int64(2), "avg": int64(1), "latest": "2024-04-01T10:00:00.000000Z", "first_name": "Alpha-Prod"}}},
		{"average is fractional", stages(obj{"group": obj{"fields": arr{obj{"operator": "average", "key": "version", "name": "avg"}}}}),
			arr{obj{"avg": 2.4}}},
		{"sum and average of tag numbers ignore other types", stages(obj{"group": obj{"fields": arr{
			obj{"operator": "sum", "key": "tags.tier", "name": "s"}, obj{"operator": "average", "key": "tags.tier", "name": "a"},
			obj{"operator": "max", "key": "tags.tier", "name": "mx"}}}}),
			arr{obj{"s": int64(3), "a": 1.5, "mx": int64(2)}}},
		{"conditions: count, sum and average of matching rows", stages(obj{"group": obj{"keys": arr{obj{"key": "resourceGroup", "name": "rg"}},
			"fields": arr{
				obj{"operator": "count", "name": "aws", "conditions": arr{obj{"k": "provider", "v": "aws", "o": "eq"}}},
				obj{"operator": "sum", "key": "version", "name": "big", "conditions": arr{obj{"key": "version", "value": 2, "operator": "gte"}}},
				obj{"operator": "average", "key": "version", "name": "avg_w1", "conditions": arr{obj{"k": "workspaceId", "v": "w1"}}},
				obj{"operator": "push", "key": "name", "name": "names", "conditions": arr{obj{"k": "name", "v": "a", "o": "contain"}}},
			}}}), arr{
			obj{"rg": "DOMAIN", "aws": int64(0), "big": int64(3), "avg_w1": nil, "names": arr{"gamma"}},
			obj{"rg": "PROJECT", "aws": int64(2), "big": int64(0), "avg_w1": int64(1), "names": arr{"Alpha-Prod", "delta-prod"}},
			obj{"rg": "WORKSPACE", "aws": int64(0), "big": int64(7), "avg_w1": int64(2), "names": arr{"beta"}}}},
		{"first and last follow the preceding sort", stages(
			obj{"sort": arr{obj{"key": "createdAt", "desc": true}}},
			obj{"group": obj{"keys": arr{obj{"key": "provider"}}, "fields": arr{
				obj{"operator": "first", "key": "name", "name": "newest"}, obj{"operator": "last", "key": "name", "name": "oldest"},
				obj{"operator": "push", "key": "secretId", "name": "ids"}}}},
			obj{"match": obj{"filter": arr{obj{"k": "provider", "v": "aws"}}}}),
			arr{obj{"provider": "aws", "newest": "delta-prod", "oldest": "Alpha-Prod", "ids": arr{"s4", "s1"}}}},
		{"first and last without a sort follow the id", stages(obj{"group": obj{"fields": arr{
			obj{"operator": "first", "key": "createdAt", "name": "f"}, obj{"operator": "last", "key": "tags.env", "name": "l"}}}}),
			arr{obj{"f": "2024-01-10T12:00:00.000000Z", "l": nil}}},
		{"push objects and add_to_set", stages(obj{"group": obj{"keys": arr{obj{"key": "workspaceId", "name": "ws"}}, "fields": arr{
			obj{"operator": "push", "name": "items", "fields": arr{obj{"key": "name", "name": "n"}, obj{"key": "version", "name": "v"}, obj{"key": "tags.env", "name": "env"}}},
			obj{"operator": "add_to_set", "key": "provider", "name": "providers"}}}}), arr{
			obj{"ws": nil, "items": arr{obj{"n": "gamma", "v": int64(3), "env": nil}}, "providers": arr{}},
			obj{"ws": "w1", "items": arr{obj{"n": "Alpha-Prod", "v": int64(1), "env": "prod"}, obj{"n": "beta", "v": int64(2), "env": "dev"}}, "providers": arr{"aws", "gcp"}},
			obj{"ws": "w2", "items": arr{obj{"n": "delta-prod", "v": int64(1), "env": "Prod"}, obj{"n": "epsilon", "v": int64(5), "env": nil}}, "providers": arr{"aws", "azure"}}}},

		// sort, limit, skip
		{"sort groups by a field, then limit", stages(byProvider, obj{"sort": arr{obj{"key": "n", "desc": true}, obj{"key": "provider"}}}, obj{"limit": 2}),
			arr{obj{"provider": "aws", "n": int64(2)}, obj{"provider": nil, "n": int64(1)}}},
		{"sort as an object, skip", stages(byProvider, obj{"sort": obj{"key": "provider", "desc": true}}, obj{"skip": 1}),
			arr{obj{"provider": "azure", "n": int64(1)}, obj{"provider": "aws", "n": int64(2)}, obj{"provider": nil, "n": int64(1)}}},
		{"sort keys form, skip then limit", stages(byProvider, obj{"sort": obj{"keys": arr{obj{"key": "provider"}}}}, obj{"skip": 1}, obj{"limit": 2}),
			arr{obj{"provider": "aws", "n": int64(2)}, obj{"provider": "azure", "n": int64(1)}}},
		{"sort and limit raw rows, then project", stages(obj{"sort": arr{obj{"key": "tags.tier", "desc": true}}}, obj{"limit": 2},
			obj{"project": obj{"fields": arr{obj{"key": "secret_id", "name": "id"}, obj{"key": "tags.tier", "name": "tier"}}}}),
			arr{obj{"id": "s2", "tier": int64(2)}, obj{"id": "s1", "tier": int64(1)}}},
		{"limit 0 keeps nothing", stages(byProvider, obj{"limit": 0}), arr{}},

		// project
		{"project size keeps the group keys", stages(obj{"group": obj{"keys": arr{obj{"key": "provider"}}, "fields": arr{
			obj{"operator": "push", "key": "name", "name": "names"}}}}, obj{"project": obj{"fields": arr{
			obj{"key": "names", "name": "count", "operator": "size"}}}}), arr{
			obj{"provider": nil, "count": int64(1)}, obj{"provider": "aws", "count": int64(2)},
			obj{"provider": "azure", "count": int64(1)}, obj{"provider": "gcp", "count": int64(1)}}},
		{"project exclude_keys and rename", stages(byProvider, obj{"project": obj{"exclude_keys": true, "fields": arr{obj{"key": "n", "name": "total"}}}},
			obj{"sort": arr{obj{"key": "total", "desc": true}}}, obj{"limit": 1}), arr{obj{"total": int64(2)}}},
		{"project keeps order", stages(obj{"sort": arr{obj{"key": "name", "desc": true}}}, obj{"project": obj{"fields": arr{obj{"key": "name"}}}}),
			arr{obj{"name": "gamma"}, obj{"name": "epsilon"}, obj{"name": "delta-prod"}, obj{"name": "beta"}, obj{"name": "Alpha-Prod"}}},

		// unwind
		{"unwind a push, regroup", stages(
			obj{"group": obj{"keys": arr{obj{"key": "provider"}}, "fields": arr{obj{"operator": "push", "key": "resourceGroup", "name": "rgs"}}}},
			obj{"unwind": obj{"path": "rgs"}},
			obj{"group": obj{"keys": arr{obj{"key": "rgs", "name": "rg"}}, "fields": arr{obj{"operator": "add_to_set", "key": "provider", "name": "providers"}}}}),
			arr{obj{"rg": "DOMAIN", "providers": arr{}}, obj{"rg": "PROJECT", "providers": arr{"aws"}}, obj{"rg": "WORKSPACE", "providers": arr{"azure", "gcp"}}}},
		{"unwind pushed objects, then a key inside them", stages(
			obj{"group": obj{"fields": arr{obj{"operator": "push", "name": "items", "fields": arr{obj{"key": "name", "name": "n"}, obj{"key": "version", "name": "v"}}}}}},
			obj{"unwind": "items"},
			obj{"match": obj{"filter": arr{obj{"k": "items.v", "o": "gte", "v": 3}}}},
			obj{"project": obj{"fields": arr{obj{"key": "items.n", "name": "name"}}}}),
			arr{obj{"name": "gamma"}, obj{"name": "epsilon"}}},
		{"unwind a tag's list", stages(obj{"unwind": obj{"path": "tags.list"}}, obj{"project": obj{"fields": arr{obj{"key": "secretId", "name": "id"},
			obj{"key": "tags.list", "name": "item"}}}}), arr{obj{"id": "s5", "item": "a"}, obj{"id": "s5", "item": "b"}}},

		// match
		{"match after group", stages(byProvider, obj{"match": obj{"filter_or": arr{obj{"k": "n", "o": "gt", "v": 1}, obj{"k": "provider", "v": nil}}}}),
			arr{obj{"provider": nil, "n": int64(1)}, obj{"provider": "aws", "n": int64(2)}}},

		// merge_objects ($mergeObjects): a later row's value of a key wins
		{"merge_objects per group", stages(obj{"group": obj{"keys": arr{obj{"key": "workspaceId", "name": "ws"}}, "fields": arr{
			obj{"operator": "merge_objects", "key": "tags", "name": "t"}}}}), arr{
			obj{"ws": nil, "t": obj{}},
			obj{"ws": "w1", "t": obj{"env": "dev", "tier": int64(2), "team": "core", "acl": arr{obj{"role": "r1", "level": int64(1)}, obj{"role": "r2", "level": int64(2), "sub": obj{"x": true}}}}},
			obj{"ws": "w2", "t": obj{"env": nil, "tier": "3", "flag": true, "list": arr{"a", "b"}}}}},
		{"merge_objects in the order of a sort", stages(obj{"sort": arr{obj{"key": "secretId", "desc": true}}},
			obj{"group": obj{"fields": arr{obj{"operator": "merge_objects", "key": "tags", "name": "t"}}}}), arr{
			obj{"t": obj{"env": "prod", "tier": int64(1), "team": "core", "acl": arr{obj{"role": "r1", "level": int64(1)}, obj{"role": "r2", "level": int64(2), "sub": obj{"x": true}}}, "flag": true, "list": arr{"a", "b"}}}}},
		{"merge_objects skips values that are not objects", stages(obj{"group": obj{"fields": arr{
			obj{"operator": "merge_objects", "key": "tags.env", "name": "t"}}}}), arr{obj{"t": obj{}}}},
		{"merge_objects with conditions", stages(obj{"group": obj{"fields": arr{obj{"operator": "merge_objects", "key": "tags", "name": "t",
			"conditions": arr{obj{"k": "provider", "v": "aws"}}}}}}), arr{obj{"t": obj{"env": "Prod", "tier": "3", "team": "core", "flag": true}}}},
		// the match operator on a pushed array of objects
		{"match operator in a match stage", stages(obj{"group": obj{"keys": arr{obj{"key": "workspaceId", "name": "ws"}}, "fields": arr{
			obj{"operator": "push", "name": "items", "fields": arr{obj{"key": "secretId", "name": "id"}, obj{"key": "provider", "name": "p"}}}}}},
			obj{"match": obj{"filter": arr{obj{"k": "items", "v": obj{"p": "gcp"}, "o": "match"}}}}), arr{
			obj{"ws": "w1", "items": arr{obj{"id": "s1", "p": "aws"}, obj{"id": "s2", "p": "gcp"}}}}},
		{"match operator in group conditions", stages(obj{"group": obj{"fields": arr{obj{"operator": "count", "name": "n",
			"conditions": arr{obj{"k": "tags.acl", "v": obj{"role": "r2"}, "o": "match"}}}}}}), arr{obj{"n": int64(1)}}},
		// raw rows
		{"a pipeline of raw rows returns the fields", stages(obj{"match": obj{"filter": arr{obj{"k": "secretId", "v": "s3"}}}}), arr{obj{
			"secretId": "s3", "name": "gamma", "schemaId": nil, "provider": nil, "resourceGroup": "DOMAIN", "domainId": "d1", "workspaceId": nil,
			"projectId": nil, "serviceAccountId": nil, "trustedSecretId": nil, "version": int64(3), "createdBy": "admin", "updatedBy": "admin",
			"createdAt": "2024-03-20T12:00:00.000000Z", "updatedAt": "2024-03-20T12:00:00.000000Z", "tags": obj{},
			"state": "ENABLED", "description": nil, "kmsKeyId": nil, "nextRotationTime": nil, "lastRotatedAt": nil}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Stat(context.Background(), adminD1, projections.SecretResource, tc.stat)
			require.NoError(t, err)
			require.Equal(t, tc.want, got["results"])
			require.NotContains(t, got, "total_count")
		})
	}
}

func TestStatDistinctAndPage(t *testing.T) {
	t.Parallel()
	pool := newQueryDB(t)
	insertSecrets(t, pool, operatorRows())
	r := newReader(pool)
	ctx := context.Background()
	stat := func(q obj) obj {
		t.Helper()
		got, err := r.Stat(ctx, adminD1, projections.SecretResource, q)
		require.NoError(t, err)
		return got
	}
	require.Equal(t, obj{"results": arr{"aws", "azure", "gcp"}}, stat(obj{"distinct": "provider"}))
	require.Equal(t, obj{"results": arr{"Prod", "dev", "prod"}}, stat(obj{"distinct": "tags.env"}))
	require.Equal(t, obj{"results": arr{int64(1), int64(2), int64(3), int64(5)}}, stat(obj{"distinct": "version"}))
	require.Equal(t, obj{"results": arr{"aws_access_key"}}, stat(obj{"distinct": "schema_id", "filter": arr{obj{"k": "provider", "v": "aws"}}}))
	require.Equal(t, obj{"results": arr{"azure"}, "total_count": int64(3)}, stat(obj{"distinct": "provider", "page": obj{"start": 2, "limit": 1}}))

	byName := stages(obj{"group": obj{"keys": arr{obj{"key": "name"}}}})
	byName["page"] = obj{"start": 2, "limit": 2}
	require.Equal(t, obj{"results": arr{obj{"name": "beta"}, obj{"name": "delta-prod"}}, "total_count": int64(5)}, stat(byName))
	byName["page"] = obj{"start": 6, "limit": 2}
	require.Equal(t, obj{"results": arr{}, "total_count": int64(5)}, stat(byName))
	byName["page"] = obj{"start": 4}
	require.Equal(t, obj{"results": arr{obj{"name": "epsilon"}, obj{"name": "gamma"}}}, stat(byName))
}

// TestStatMalformed: malformed statistics queries are QueryErrors naming
// the stage, key, operator or value at fault.
func TestStatMalformed(t *testing.T) {
	t.Parallel()
	pool := newQueryDB(t)
	insertSecrets(t, pool, operatorRows())
	r := newReader(pool)
	count := arr{obj{"count": obj{"name": "n"}}}
	group := func(g obj) obj { return stages(obj{"group": g}) }
	cases := []struct {
		name string
		stat obj
		want []string
	}{
		{"no aggregate nor distinct", obj{"filter": arr{}}, []string{"aggregate", "distinct"}},
		{"both aggregate and distinct", obj{"aggregate": count, "distinct": "name"}, []string{"not both"}},
		{"unknown top-level key", obj{"aggregate": count, "sort": arr{}}, []string{`"sort"`}},
		{"aggregate not a list", obj{"aggregate": obj{"count": obj{}}}, []string{"aggregate must be a non-empty list"}},
		{"aggregate empty", obj{"aggregate": arr{}}, []string{"non-empty"}},
		{"unknown stage", stages(obj{"explode": obj{}}), []string{`"explode"`, "aggregate[0]"}},
		{"merge_objects on a text key", group(obj{"fields": arr{obj{"operator": "merge_objects", "key": "name", "name": "m"}}}), []string{`"merge_objects"`, "object key"}},
		{"merge_objects without a key", group(obj{"fields": arr{obj{"operator": "merge_objects", "name": "m"}}}), []string{`"merge_objects"`, "needs a key"}},
		{"stage with two stages", stages(obj{"count": obj{}, "limit": 1}), []string{"aggregate[0]", "exactly one"}},
		{"stage not an object", stages("count"), []string{"aggregate[0]"}},
		{"filter not a list", obj{"filter": obj{"k": "name"}, "aggregate": count}, []string{"filter must be a list"}},
		{"filter without k", obj{"filter": arr{obj{"v": "x"}}, "aggregate": count}, []string{"filter[0]", "k is required"}},
		{"filter unknown option", obj{"filter": arr{obj{"k": "name", "x": 1}}, "aggregate": count}, []string{`"x"`}},
		{"filter unknown key", obj{"filter": arr{obj{"k": "colour", "v": "x"}}, "aggregate": count}, []string{`"colour"`}},
		{"filter unknown operator", obj{"filter_or": arr{obj{"k": "name", "v": "x", "o": "like"}}, "aggregate": count}, []string{`"like"`}},
		{"filter wrong value type", obj{"filter": arr{obj{"k": "version", "v": "x", "o": "gt"}}, "aggregate": count}, []string{`"version"`, "number"}},
		{"keyword not a string", obj{"keyword": 5, "aggregate": count}, []string{"keyword"}},
		{"page not an object", obj{"page": 5, "aggregate": count}, []string{"page"}},
		{"page negative", obj{"page": obj{"limit": -1}, "aggregate": count}, []string{"page.limit"}},
		{"page fractional", obj{"page": obj{"limit": 1.5}, "aggregate": count}, []string{"page.limit"}},
		{"distinct unknown key", obj{"distinct": "colour"}, []string{"distinct", `"colour"`}},
		{"distinct not a string", obj{"distinct": arr{"name"}}, []string{"distinct"}},
		{"group empty", group(obj{}), []string{"aggregate[0].group", "keys or fields"}},
		{"group unknown option", group(obj{"keys": arr{"name"}, "having": 1}), []string{`"having"`}},
		{"group key unknown", group(obj{"keys": arr{obj{"key": "colour"}}}), []string{"aggregate[0].group: keys[0]", `"colour"`}},
		{"group key missing", group(obj{"keys": arr{obj{"name": "x"}}}), []string{"keys[0]", "key is required"}},
		{"group keys not a list", group(obj{"keys": "name"}), []string{"keys must be a list"}},
		{"date_format on text", group(obj{"keys": arr{obj{"key": "name", "date_format": "%Y"}}}), []string{"date_format", `"name"`}},
		{"date_format unknown directive", group(obj{"keys": arr{obj{"key": "createdAt", "date_format": "%Y-%Q"}}}), []string{"%Q"}},
		{"date_format trailing percent", group(obj{"keys": arr{obj{"key": "createdAt", "date_format": "%Y%"}}}), []string{"date_format"}},
		{"duplicate names", group(obj{"keys": arr{obj{"key": "name", "name": "x"}}, "fields": arr{obj{"operator": "count", "name": "x"}}}), []string{`"x"`, "twice"}},
		{"field unknown operator", group(obj{"fields": arr{obj{"operator": "median", "key": "version"}}}), []string{"fields[0]", `"median"`}},
		{"field without operator", group(obj{"fields": arr{obj{"key": "version"}}}), []string{"fields[0]", `""`}},
		{"field sum without key", group(obj{"fields": arr{obj{"operator": "sum", "name": "s"}}}), []string{"fields[0]", "needs a key"}},
		{"field sum of text", group(obj{"fields": arr{obj{"operator": "sum", "key": "name"}}}), []string{`"sum"`, "numeric", `"name"`}},
		{"field average of time", group(obj{"fields": arr{obj{"operator": "average", "key": "createdAt"}}}), []string{`"average"`, `"createdAt"`}},
		{"field unknown key", group(obj{"fields": arr{obj{"operator": "max", "key": "colour"}}}), []string{"fields[0]", `"colour"`}},
		{"count field unknown key", group(obj{"fields": arr{obj{"operator": "count", "key": "colour"}}}), []string{`"colour"`}},
		{"field conditions unknown key", group(obj{"fields": arr{obj{"operator": "count", "conditions": arr{obj{"k": "colour", "v": 1}}}}}), []string{"conditions", `"colour"`}},
		{"field conditions not a list", group(obj{"fields": arr{obj{"operator": "count", "conditions": obj{"k": "name"}}}}), []string{"conditions"}},
		{"field fields on max", group(obj{"fields": arr{obj{"operator": "max", "key": "name", "fields": arr{}}}}), []string{"push"}},
		{"push fields empty", group(obj{"fields": arr{obj{"operator": "push", "name": "p", "fields": arr{}}}}), []string{"fields must be a list"}},
		{"push field unknown key", group(obj{"fields": arr{obj{"operator": "push", "name": "p", "fields": arr{obj{"key": "colour"}}}}}), []string{`"colour"`}},
		{"key from before the group", stages(obj{"group": obj{"keys": arr{obj{"key": "provider"}}}}, obj{"sort": arr{obj{"key": "name"}}}),
			[]string{"aggregate[1].sort", `"name"`, "provider"}},
		{"sort without key", stages(obj{"sort": arr{obj{"desc": true}}}), []string{"aggregate[0].sort", "sort key is required"}},
		{"sort desc not a bool", stages(obj{"sort": arr{obj{"key": "name", "desc": "yes"}}}), []string{"desc"}},
		{"sort empty", stages(obj{"sort": arr{}}), []string{"at least one"}},
		{"sort not a list", stages(obj{"sort": "name"}), []string{"aggregate[0].sort"}},
		{"limit negative", stages(obj{"limit": -1}), []string{"aggregate[0].limit", "non-negative"}},
		{"limit a string", stages(obj{"limit": "5"}), []string{"aggregate[0].limit"}},
		{"skip fractional", stages(obj{"skip": 1.5}), []string{"aggregate[0].skip"}},
		{"project without fields", stages(obj{"project": obj{}}), []string{"aggregate[0].project", "fields is required"}},
		{"project unknown operator", stages(obj{"project": obj{"fields": arr{obj{"key": "name", "operator": "concat"}}}}), []string{`"concat"`}},
		{"project size of text", stages(obj{"project": obj{"fields": arr{obj{"key": "name", "operator": "size"}}}}), []string{"size", `"name"`}},
		{"project unknown key", stages(obj{"project": obj{"fields": arr{obj{"key": "colour"}}}}), []string{`"colour"`}},
		{"project exclude_keys not a bool", stages(obj{"project": obj{"fields": arr{obj{"key": "name"}}, "exclude_keys": 1}}), []string{"exclude_keys"}},
		{"unwind a text field", stages(obj{"unwind": obj{"path": "name"}}), []string{"aggregate[0].unwind", `"name"`, "array"}},
		{"unwind the tags object", stages(obj{"unwind": obj{"path": "tags"}}), []string{`"tags"`, "object"}},
		{"unwind unknown path", stages(obj{"unwind": obj{"path": "colour"}}), []string{`"colour"`}},
		{"unwind without path", stages(obj{"unwind": obj{}}), []string{"path is required"}},
		{"match empty", stages(obj{"match": obj{}}), []string{"aggregate[0].match"}},
		{"match bad operator", stages(obj{"match": obj{"filter": arr{obj{"k": "name", "o": "like", "v": "x"}}}}), []string{`"like"`}},
		{"invalid regex", obj{"filter": arr{obj{"k": "tags.env", "o": "regex", "v": "*"}}, "aggregate": count}, []string{"regular expression", `"tags.env"`}},
		// injection attempts: keys are looked up, names and formats are bound
		{"injection in group key", group(obj{"keys": arr{obj{"key": "name); DROP TABLE secrets; --"}}}), []string{"unknown key"}},
		{"injection in sort key", stages(obj{"sort": arr{obj{"key": "name; DELETE FROM secrets"}}}), []string{"unknown key"}},
		{"injection in field key", group(obj{"fields": arr{obj{"operator": "max", "key": "(SELECT 1)"}}}), []string{"unknown key"}},
		{"injection in distinct", obj{"distinct": "name FROM secrets; --"}, []string{"unknown key"}},
		{"injection in operator", group(obj{"fields": arr{obj{"operator": "count(*) FROM pg_user --"}}}), []string{"unknown operator"}},
		{"injection in stage", stages(obj{"limit 1; DROP TABLE secrets": 1}), []string{"unknown stage"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Stat(context.Background(), adminD1, projections.SecretResource, tc.stat)
			requireQueryError(t, err, tc.want...)
		})
	}
	// Hostile names, tag names and date formats are data.
	for _, h := range []string{`x'); DROP TABLE secrets; --`, `"; SELECT 1; --`, `$1`, `c_1`, `secret_id`} {
		got, err := r.Stat(context.Background(), adminD1, projections.SecretResource, stages(obj{"group": obj{
			"keys":   arr{obj{"key": "createdAt", "name": h, "date_format": h + "%Y"}, obj{"key": "tags." + h, "name": h + "2"}},
			"fields": arr{obj{"operator": "count", "name": h + "3"}, obj{"operator": "push", "name": h + "4", "fields": arr{obj{"key": "name", "name": h}}}}}},
			obj{"sort": arr{obj{"key": h + "3", "desc": true}}}))
		require.NoError(t, err, h)
		res := got["results"].(arr)
		require.Len(t, res, 1)
		require.Equal(t, h+"2024", res[0].(obj)[h])
		require.Equal(t, int64(5), res[0].(obj)[h+"3"])
	}
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM secrets`).Scan(&n))
	require.Equal(t, 5, n)
}
