package query_test

// Property test: random list and stat queries over a random data set are
// answered by the SQL path and by the in-memory evaluator below, written
// from the README's query language section without looking at the SQL, and the answers must agree,
// order included.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/query"
)

// --- data --------------------------------------------------------------

// jnull is a tag whose value is JSON null (present, unlike a missing tag).
type jnull struct{}

var (
	propWords     = []string{"alpha", "beta", "Gamma", "delta", "prod", "dev", "db", "key", "x9"}
	propProviders = []string{"aws", "gcp", "azure"}
	propSchemas   = []string{"aws_access_key", "gcp_sa", "azure_sp"}
	propEnvs      = []any{"prod", "dev", "Prod", "stage", nil}
	propTeams     = []any{"core", "edge", "Core-2", "db", "CORE", `Core "1" \`}
	// propEnvKeys differ from env only in case: tags.env never reads them.
	propEnvKeys = []any{"PROD", "prod", "Dev", 1}
)

func randomRows(rng *rand.Rand, n int) []secretRow {
	pick := func(opts []string) *string {
		if rng.IntN(4) == 0 {
			return nil
		}
		return sp(opts[rng.IntN(len(opts))])
	}
	rows := make([]secretRow, n)
	for i := range rows {
		words := []string{propWords[rng.IntN(len(propWords))]}
		if rng.IntN(2) == 0 {
			words = append(words, propWords[rng.IntN(len(propWords))])
		}
		r := secretRow{ID: fmt.Sprintf("s%03d", i), Name: strings.Join(words, "-"), Provider: pick(propProviders), SchemaID: pick(propSchemas),
			Domain: "d1", Version: int64(1 + rng.IntN(5)), Tags: map[string]any{}}
		if rng.IntN(10) == 0 {
			r.Domain = "d2" // never visible to the caller of the property test
		}
		switch rng.IntN(3) {
		case 0:
			r.Group = "DOMAIN"
		case 1:
			r.Group, r.Workspace = "WORKSPACE", sp(fmt.Sprintf("w%d", rng.IntN(3)))
		default:
			r.Group, r.Workspace, r.Project = "PROJECT", sp(fmt.Sprintf("w%d", rng.IntN(3))), sp(fmt.Sprintf("p%d", rng.IntN(4)))
		}
		if rng.IntN(3) > 0 {
			r.Tags["env"] = propEnvs[rng.IntN(len(propEnvs))]
		}
		if rng.IntN(4) == 0 {
			r.Tags["Env"] = propEnvKeys[rng.IntN(len(propEnvKeys))]
		}
		switch rng.IntN(4) {
		case 0:
			r.Tags["tier"] = 1 + rng.IntN(3)
		case 1:
			r.Tags["tier"] = strconv.Itoa(1 + rng.IntN(3))
		case 2:
			r.Tags["tier"] = 0.5 + float64(rng.IntN(3))
		}
		if rng.IntN(2) == 0 {
			r.Tags["team"] = propTeams[rng.IntN(len(propTeams))]
		}
		if rng.IntN(3) == 0 {
			r.Tags["flag"] = rng.IntN(2) == 0
		}
		if rng.IntN(2) == 0 {
			r.Tags["acl"] = randomACL(rng)
		}
		r.CreatedAt = queryNow.Add(-time.Duration(rng.IntN(60*24*3600)) * time.Second)
		r.UpdatedAt = r.CreatedAt.Add(time.Duration(rng.IntN(100)) * time.Hour)
		rows[i] = r
	}
	return rows
}

// randomACL is a tag value for the match operator: an array of objects
// (sometimes with a scalar among them).
func randomACL(rng *rand.Rand) []any {
	acl := []any{}
	for range rng.IntN(4) {
		if rng.IntN(8) == 0 {
			acl = append(acl, "r1")
			continue
		}
		e := map[string]any{"role": propRoles[rng.IntN(len(propRoles))], "level": 1 + rng.IntN(3)}
		if rng.IntN(3) == 0 {
			e["sub"] = map[string]any{"x": rng.IntN(2) == 0}
		}
		acl = append(acl, e)
	}
	return acl
}

var propRoles = []string{"r1", "r2", "R1", "admin"}

// --- the evaluator ------------------------------------------------------

type kind int

const (
	kText kind = iota
	kNum
	kTime
	kJSON
)

type propKey struct {
	names []string // spellings: GraphQL and Cloudforet
	kind  kind
	get   func(r secretRow) any // nil: missing
	// exact: eq and in keep case (the resource's Exact columns); on other
	// keys they ignore the case of strings, as python-core's iexact.
	exact bool
}

func strp(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func tagKey(name string) propKey {
	return propKey{names: []string{"tags." + name}, kind: kJSON, get: func(r secretRow) any {
		v, ok := r.Tags[name]
		if !ok {
			return nil
		}
		if v == nil {
			return jnull{}
		}
		switch n := v.(type) {
		case int:
			return float64(n)
		}
		return v
	}}
}

var propKeys = []propKey{
	{[]string{"secretId", "secret_id"}, kText, func(r secretRow) any { return r.ID }, true},
	{[]string{"name"}, kText, func(r secretRow) any { return r.Name }, false},
	{[]string{"schemaId", "schema_id"}, kText, func(r secretRow) any { return strp(r.SchemaID) }, false},
	{[]string{"provider"}, kText, func(r secretRow) any { return strp(r.Provider) }, false},
	{[]string{"resourceGroup", "resource_group"}, kText, func(r secretRow) any { return r.Group }, false},
	{[]string{"domainId", "domain_id"}, kText, func(r secretRow) any { return r.Domain }, true},
	{[]string{"workspaceId", "workspace_id"}, kText, func(r secretRow) any { return strp(r.Workspace) }, true},
	{[]string{"projectId", "project_id"}, kText, func(r secretRow) any { return strp(r.Project) }, true},
	{[]string{"version"}, kNum, func(r secretRow) any { return float64(r.Version) }, false},
	{[]string{"createdAt", "created_at"}, kTime, func(r secretRow) any { return r.CreatedAt }, false},
	{[]string{"updatedAt", "updated_at"}, kTime, func(r secretRow) any { return r.UpdatedAt }, false},
	tagKey("env"), tagKey("Env"), tagKey("tier"), tagKey("team"), tagKey("flag"), tagKey("absent"),
}

func keyByName(name string) propKey {
	for _, k := range propKeys {
		if slices.Contains(k.names, name) {
			return k
		}
	}
	panic("no key " + name)
}

// jsonRank orders JSON types as PostgreSQL's jsonb does.
func jsonRank(v any) int {
	switch v.(type) {
	case jnull:
		return 0
	case string:
		return 1
	case float64:
		return 2
	case bool:
		return 3
	}
	panic(fmt.Sprintf("json value %T", v))
}

// compareValues orders two present values of one key.
func compareValues(k kind, a, b any) int {
	switch k {
	case kText:
		return strings.Compare(a.(string), b.(string))
	case kNum:
		return cmp.Compare(a.(float64), b.(float64))
	case kTime:
		return a.(time.Time).Compare(b.(time.Time))
	}
	if ra, rb := jsonRank(a), jsonRank(b); ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case float64:
		return cmp.Compare(x, b.(float64))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	}
	return 0
}

// compareNullsLowest orders with a missing value lowest.
func compareNullsLowest(k kind, a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return compareValues(k, a, b)
}

// literal turns a query value into the evaluator's representation.
func literal(k kind, v any) any {
	switch k {
	case kTime:
		t, err := time.Parse(time.RFC3339, v.(string))
		if err != nil {
			panic(err)
		}
		return t
	case kNum:
		return toF(v)
	case kJSON:
		if n, ok := v.(int); ok {
			return float64(n)
		}
	}
	return v
}

func toF(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case float64:
		return n
	case int64:
		return float64(n)
	}
	panic(fmt.Sprintf("number %T", v))
}

func sameType(a, b any) bool { return fmt.Sprintf("%T", a) == fmt.Sprintf("%T", b) }

// evalEq is eq; with fold, strings of text keys and string tag values
// compare ignoring case.
func evalEq(k propKey, x, v any, fold bool) bool {
	if v == nil {
		return x == nil || x == (jnull{})
	}
	if x == nil {
		return false
	}
	xs, xok := x.(string)
	vs, vok := v.(string)
	if fold && !k.exact && xok && vok && (k.kind == kText || k.kind == kJSON) {
		return strings.ToLower(xs) == strings.ToLower(vs)
	}
	lv := literal(k.kind, v)
	if k.kind == kJSON && !sameType(x, lv) {
		return false
	}
	return compareValues(k.kind, x, lv) == 0
}

func textOf(k propKey, x any) (string, bool) {
	s, ok := x.(string)
	return s, ok
}

func evalCond(r secretRow, c query.Filter, now time.Time) bool {
	if c.Op == "match" {
		return evalMatch(r.Tags[strings.TrimPrefix(c.Key, "tags.")], c.Value.(map[string]any))
	}
	k := keyByName(c.Key)
	x := k.get(r)
	list, _ := c.Value.([]any)
	contain := func(v any) bool {
		s, ok := textOf(k, x)
		return ok && strings.Contains(strings.ToLower(s), strings.ToLower(v.(string)))
	}
	regex := func(v any) bool {
		s, ok := textOf(k, x)
		return ok && regexp.MustCompile("(?i)"+v.(string)).MatchString(s)
	}
	ordered := func(v any, ok func(int) bool) bool {
		if x == nil {
			return false
		}
		lv := literal(k.kind, v)
		if k.kind == kJSON && !sameType(x, lv) {
			return false
		}
		return ok(compareValues(k.kind, x, lv))
	}
	at := func(op string, t time.Time) bool {
		if x == nil {
			return false
		}
		c := x.(time.Time).Compare(t)
		switch op {
		case "lt":
			return c < 0
		case "lte":
			return c <= 0
		case "gt":
			return c > 0
		}
		return c >= 0
	}
	switch c.Op {
	case "eq":
		return evalEq(k, x, c.Value, true)
	case "not":
		return !evalEq(k, x, c.Value, false)
	case "lt":
		return ordered(c.Value, func(c int) bool { return c < 0 })
	case "lte":
		return ordered(c.Value, func(c int) bool { return c <= 0 })
	case "gt":
		return ordered(c.Value, func(c int) bool { return c > 0 })
	case "gte":
		return ordered(c.Value, func(c int) bool { return c >= 0 })
	case "exists":
		return (x != nil) == c.Value.(bool)
	case "contain":
		return contain(c.Value)
	case "not_contain":
		return !contain(c.Value)
	case "in":
		return slices.ContainsFunc(list, func(v any) bool { return evalEq(k, x, v, true) })
	case "not_in":
		return !slices.ContainsFunc(list, func(v any) bool { return evalEq(k, x, v, false) })
	case "contain_in":
		return slices.ContainsFunc(list, contain)
	case "not_contain_in":
		return !slices.ContainsFunc(list, contain)
	case "regex":
		return regex(c.Value)
	case "regex_in":
		return slices.ContainsFunc(list, regex)
	case "datetime_lt", "datetime_lte", "datetime_gt", "datetime_gte":
		return at(strings.TrimPrefix(c.Op, "datetime_"), literal(kTime, c.Value).(time.Time))
	case "timediff_lt", "timediff_lte", "timediff_gt", "timediff_gte":
		return at(strings.TrimPrefix(c.Op, "timediff_"), timediffs[c.Value.(string)])
	}
	panic("operator " + c.Op)
}

// evalMatch is MongoDB's $elemMatch as the README states it: some element
// of the array is an object in which every field of want, reached by its
// dotted path, equals its value as JSON (numbers by value), or is missing
// or null when the value is null.
func evalMatch(tag any, want map[string]any) bool {
	list, ok := tag.([]any)
	if !ok {
		return false
	}
	return slices.ContainsFunc(list, func(e any) bool {
		obj, ok := e.(map[string]any)
		if !ok {
			return false
		}
		for path, v := range want {
			got, found := any(obj), true
			for _, part := range strings.Split(path, ".") {
				m, ok := got.(map[string]any)
				if !ok {
					found = false
					break
				}
				if got, found = m[part]; !found {
					break
				}
			}
			if v == nil {
				if found && got != nil {
					return false
				}
				continue
			}
			if !found || !sameJSON(got, v) {
				return false
			}
		}
		return true
	})
}

// sameJSON compares two JSON values, numbers by value.
func sameJSON(a, b any) bool {
	norm := func(v any) any {
		switch n := v.(type) {
		case int:
			return float64(n)
		}
		return v
	}
	return fmt.Sprint(norm(a)) == fmt.Sprint(norm(b)) && fmt.Sprintf("%T", norm(a)) == fmt.Sprintf("%T", norm(b))
}

// timediffs are the time expressions the generator uses, with their
// instants worked out by hand from queryNow (Wednesday 2024-04-03 10:30 UTC).
var timediffs = map[string]time.Time{
	"now":          queryNow,
	"now-1d":       queryNow.Add(-24 * time.Hour),
	"now - 7d":     queryNow.Add(-7 * 24 * time.Hour),
	"now-2w":       queryNow.Add(-14 * 24 * time.Hour),
	"now/d":        time.Date(2024, 4, 3, 0, 0, 0, 0, time.UTC),
	"now/d-30d":    time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC),
	"now/w":        time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC),
	"now/w + 2h":   time.Date(2024, 4, 1, 2, 0, 0, 0, time.UTC),
	"now/w-3w":     time.Date(2024, 3, 11, 0, 0, 0, 0, time.UTC),
	"now/h - 90m":  time.Date(2024, 4, 3, 8, 30, 0, 0, time.UTC),
	"now-36h+30m":  queryNow.Add(-36*time.Hour + 30*time.Minute),
	"now-1000000s": queryNow.Add(-1000000 * time.Second),
}

func evalList(rows []secretRow, q query.Input, now time.Time) ([]string, int) {
	return evalListVisible(rows, func(r secretRow) bool { return r.Domain == "d1" }, q, now)
}

// evalListVisible answers q over the rows visible says the caller sees.
func evalListVisible(rows []secretRow, visible func(secretRow) bool, q query.Input, now time.Time) ([]string, int) {
	var hits []secretRow
	for _, r := range rows {
		if !visible(r) {
			continue
		}
		ok := true
		for _, c := range q.Filter {
			ok = ok && evalCond(r, c, now)
		}
		// keyword: any word in any keyword field; its conditions join filterOr.
		words := slices.DeleteFunc(strings.Split(strings.TrimSpace(q.Keyword), " "), func(w string) bool { return w == "" })
		keyword := slices.ContainsFunc(words, func(w string) bool {
			return slices.ContainsFunc([]*string{&r.ID, &r.Name, r.SchemaID, r.Provider}, func(s *string) bool {
				return s != nil && strings.Contains(strings.ToLower(*s), strings.ToLower(w))
			})
		})
		if len(q.FilterOr) > 0 || len(words) > 0 {
			ok = ok && (keyword || slices.ContainsFunc(q.FilterOr, func(c query.Filter) bool { return evalCond(r, c, now) }))
		}
		if ok {
			hits = append(hits, r)
		}
	}
	idDesc := len(q.Sort) > 0 && q.Sort[len(q.Sort)-1].Desc
	slices.SortFunc(hits, func(a, b secretRow) int {
		for _, s := range q.Sort {
			k := keyByName(s.Key)
			c := compareNullsLowest(k.kind, k.get(a), k.get(b))
			if s.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		if idDesc {
			return strings.Compare(b.ID, a.ID)
		}
		return strings.Compare(a.ID, b.ID)
	})
	total := len(hits)
	start := max(q.Page.Start, 1) - 1
	hits = hits[min(start, len(hits)):]
	limit := q.Page.Limit
	if limit == 0 {
		limit = query.DefaultLimits().DefaultPageSize // page.limit 0: the default page
	}
	if len(hits) > limit {
		hits = hits[:limit]
	}
	ids := []string{}
	for _, h := range hits {
		ids = append(ids, h.ID)
	}
	return ids, total
}

// --- the generator ------------------------------------------------------

var (
	textOps = []string{"eq", "not", "lt", "lte", "gt", "gte", "exists", "contain", "not_contain", "in", "not_in", "contain_in",
		"not_contain_in", "regex", "regex_in"}
	numOps  = []string{"eq", "not", "lt", "lte", "gt", "gte", "exists", "in", "not_in"}
	timeOps = []string{"eq", "not", "lt", "lte", "gt", "gte", "exists", "in", "not_in", "datetime_lt", "datetime_lte", "datetime_gt",
		"datetime_gte", "timediff_lt", "timediff_lte", "timediff_gt", "timediff_gte"}
	propRegexes   = []string{"^a", "a$", "pro", "^(alpha|beta)", "d.v", "[0-9]", "^g.*a$", "-", "e{2}|^x"}
	propSubstrs   = []string{"a", "PRO", "et", "-", "e", "x9", "aws", "_", "co", "zzz"}
	timediffExprs = func() []string {
		var out []string
		for k := range timediffs {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}()
)

type generator struct {
	rng  *rand.Rand
	rows []secretRow
}

// sample is a value of key k: mostly one from the data, sometimes not.
func (g *generator) sample(k propKey) any {
	if g.rng.IntN(5) > 0 {
		v := k.get(g.rows[g.rng.IntN(len(g.rows))])
		switch x := v.(type) {
		case nil, jnull:
			if g.rng.IntN(3) > 0 {
				return g.sample(k)
			}
			return nil
		case time.Time:
			return x.Format(time.RFC3339)
		case float64:
			if k.kind == kNum || x == math.Trunc(x) {
				return int(x)
			}
			return x
		}
		return v
	}
	switch k.kind {
	case kNum:
		return []any{0, 3, 2.5, 6}[g.rng.IntN(4)]
	case kTime:
		return queryNow.Add(-time.Duration(g.rng.IntN(70*24)) * time.Hour).Format(time.RFC3339)
	case kJSON:
		return []any{"prod", "2", 2, 1.5, true, false, "zzz", "CORE"}[g.rng.IntN(8)]
	}
	return []string{"aws", "Gamma", "zzz", "w1", "PROJECT", "alpha-beta"}[g.rng.IntN(6)]
}

func (g *generator) condition() query.Filter {
	if g.rng.IntN(10) == 0 {
		return g.match()
	}
	k := propKeys[g.rng.IntN(len(propKeys))]
	name := k.names[g.rng.IntN(len(k.names))]
	ops := map[kind][]string{kText: textOps, kNum: numOps, kTime: timeOps, kJSON: textOps}[k.kind]
	op := ops[g.rng.IntN(len(ops))]
	c := query.Filter{Key: name, Op: op}
	nonNull := func() any {
		for {
			if v := g.sample(k); v != nil {
				return v
			}
		}
	}
	switch op {
	case "eq", "not":
		c.Value = g.sample(k)
	case "lt", "lte", "gt", "gte":
		c.Value = nonNull()
	case "exists":
		c.Value = g.rng.IntN(2) == 0
	case "contain", "not_contain":
		c.Value = propSubstrs[g.rng.IntN(len(propSubstrs))]
	case "in", "not_in":
		list := []any{}
		for range g.rng.IntN(4) {
			list = append(list, g.sample(k))
		}
		c.Value = list
	case "contain_in", "not_contain_in":
		list := []any{}
		for range g.rng.IntN(3) {
			list = append(list, propSubstrs[g.rng.IntN(len(propSubstrs))])
		}
		c.Value = list
	case "regex":
		c.Value = propRegexes[g.rng.IntN(len(propRegexes))]
	case "regex_in":
		list := []any{}
		for range g.rng.IntN(3) {
			list = append(list, propRegexes[g.rng.IntN(len(propRegexes))])
		}
		c.Value = list
	case "datetime_lt", "datetime_lte", "datetime_gt", "datetime_gte":
		c.Value = nonNull()
	default:
		c.Value = timediffExprs[g.rng.IntN(len(timediffExprs))]
	}
	return c
}

func (g *generator) conditions(max int) []query.Filter {
	var out []query.Filter
	for range g.rng.IntN(max + 1) {
		out = append(out, g.condition())
	}
	return out
}

// match is a match condition: mostly on the acl tag (arrays of objects),
// sometimes on a tag that is never an array.
func (g *generator) match() query.Filter {
	terms := []func(map[string]any){
		func(m map[string]any) { m["role"] = propRoles[g.rng.IntN(len(propRoles))] },
		func(m map[string]any) { m["level"] = []any{1, 2, 3, 2.0, "2"}[g.rng.IntN(5)] },
		func(m map[string]any) { m["sub.x"] = g.rng.IntN(2) == 0 },
		func(m map[string]any) { m["sub"] = nil },
	}
	v := map[string]any{}
	for range 1 + g.rng.IntN(2) {
		terms[g.rng.IntN(len(terms))](v)
	}
	key := "tags.acl"
	if g.rng.IntN(6) == 0 {
		key = []string{"tags.env", "tags.absent"}[g.rng.IntN(2)]
	}
	return query.Filter{Key: key, Op: "match", Value: v}
}

// propOnly are keys only may name.
var propOnly = []string{"name", "schema_id", "provider", "tags.env", "version", "createdAt", "domain_id", "workspaceId", "updated_by", "resourceGroup"}

func (g *generator) query() query.Input {
	q := query.Input{Filter: g.conditions(3)}
	if g.rng.IntN(3) == 0 {
		q.FilterOr = g.conditions(3)
	}
	if g.rng.IntN(3) == 0 {
		q.Keyword = []string{"a", "PROD aws", "e -", "s01", "gcp_", "x9 ALPHA", "alpha STAGING", " beta  gamma ", "zzz"}[g.rng.IntN(9)]
	}
	if g.rng.IntN(4) == 0 {
		for range 1 + g.rng.IntN(3) {
			q.Only = append(q.Only, propOnly[g.rng.IntN(len(propOnly))])
		}
	}
	q.Minimal = g.rng.IntN(5) == 0
	for range g.rng.IntN(4) {
		k := propKeys[g.rng.IntN(len(propKeys))]
		q.Sort = append(q.Sort, query.SortKey{Key: k.names[g.rng.IntN(len(k.names))], Desc: g.rng.IntN(2) == 0})
	}
	if g.rng.IntN(3) == 0 {
		q.Page = query.Page{Start: g.rng.IntN(30), Limit: g.rng.IntN(15)}
	}
	return q
}

func propSeed(t *testing.T) uint64 {
	if s := os.Getenv("QUERY_PROPERTY_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return n
	}
	return uint64(time.Now().UnixNano())
}

func TestQueryProperty(t *testing.T) {
	t.Parallel()
	seed := propSeed(t)
	t.Logf("seed %d (set QUERY_PROPERTY_SEED to replay)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	pool := newQueryDB(t)
	rows := randomRows(rng, 150)
	insertSecrets(t, pool, rows)
	r := newReader(pool)
	g := &generator{rng: rng, rows: rows}
	const n = 600
	selective := 0 // queries that keep some rows but not all
	visible, _ := evalList(rows, query.Input{}, queryNow)
	matches := 0 // match conditions that keep some rows but not all
	for i := range n {
		q := g.query()
		for _, c := range append(slices.Clone(q.Filter), q.FilterOr...) {
			if c.Op == "match" {
				hits := len(slices.DeleteFunc(slices.Clone(rows), func(r secretRow) bool { return !evalCond(r, c, queryNow) }))
				if hits > 0 && hits < len(rows) {
					matches++
				}
			}
		}
		got, total, err := r.Secrets(context.Background(), adminD1, q)
		require.NoError(t, err, "query %d: %+v", i, q)
		wantIDs, wantTotal := evalList(rows, q, queryNow)
		require.Equal(t, wantTotal, total, "query %d total: %s", i, showQuery(q))
		require.Equal(t, wantIDs, secretIDs(got), "query %d rows: %s", i, showQuery(q))
		fields := evalFields(q)
		for _, s := range got {
			requireNarrowed(t, s, fields, fmt.Sprintf("query %d: %s", i, showQuery(q)))
		}
		if total > 0 && total < len(visible) {
			selective++
		}
	}
	t.Logf("%d of %d queries were selective; %d selective match conditions", selective, n, matches)
	require.Greater(t, matches, 20, "the generator should make match conditions that select")
	require.Greater(t, selective, n/4, "the generator should mostly make queries that select")
}

// evalFields is the fields a list answers (GraphQL names; nil: all): the
// union of only (tags.<key> is tags) and, with minimal, the minimal fields;
// the id always.
func evalFields(q query.Input) map[string]bool {
	if len(q.Only) == 0 && !q.Minimal {
		return nil
	}
	out := map[string]bool{"secretId": true}
	for _, k := range q.Only {
		if strings.HasPrefix(k, "tags.") {
			out["tags"] = true
			continue
		}
		out[camel(k)] = true
	}
	if q.Minimal {
		for _, f := range []string{"name", "schemaId", "provider"} {
			out[f] = true
		}
	}
	return out
}

// camel is the GraphQL name of a Cloudforet one (schema_id: schemaId).
func camel(k string) string {
	parts := strings.Split(k, "_")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

// requireNarrowed checks that s answers exactly the fields (its values
// are checked elsewhere; a field it answers is never null but for the
// nullable ones).
func requireNarrowed(t *testing.T, s projections.Secret, fields map[string]bool, msg string) {
	t.Helper()
	answers := func(f string) bool { return fields == nil || fields[f] }
	require.Equal(t, answers("name"), s.NameOrNull() != nil, "%s: name", msg)
	require.Equal(t, answers("version"), s.VersionOrNull() != nil, "%s: version", msg)
	require.Equal(t, answers("createdAt"), s.CreatedAtOrNull() != nil, "%s: createdAt", msg)
	require.Equal(t, answers("updatedBy"), s.UpdatedByOrNull() != nil, "%s: updatedBy", msg)
	require.Equal(t, answers("domainId"), s.DomainIDOrNull() != nil, "%s: domainId", msg)
	require.Equal(t, answers("resourceGroup"), s.ResourceGroupOrNull() != nil, "%s: resourceGroup", msg)
	require.Equal(t, answers("tags"), s.Tags != nil, "%s: tags", msg)
	for f, p := range map[string]*string{"schemaId": s.SchemaID, "provider": s.Provider, "workspaceId": s.WorkspaceID, "projectId": s.ProjectID} {
		if !answers(f) {
			require.Nil(t, p, "%s: %s", msg, f)
		}
	}
}

func showQuery(q query.Input) string {
	js, _ := json.Marshal(q)
	return string(js)
}

// --- stat ---------------------------------------------------------------

type groupKeySpec struct {
	key, format string
}

type statSpec struct {
	filter []query.Filter
	keys   []groupKeySpec
	sortN  bool // sort by n desc after grouping
	limit  int
}

var propGroupKeys = []groupKeySpec{
	{key: "provider"}, {key: "schema_id"}, {key: "resourceGroup"}, {key: "workspaceId"}, {key: "tags.env"}, {key: "tags.tier"},
	{key: "tags.flag"}, {key: "version"}, {key: "createdAt", format: "%Y-%m"}, {key: "created_at", format: "day"},
}

func (g *generator) stat() statSpec {
	s := statSpec{filter: g.conditions(2)}
	for range 1 + g.rng.IntN(2) {
		s.keys = append(s.keys, propGroupKeys[g.rng.IntN(len(propGroupKeys))])
	}
	s.keys = slices.CompactFunc(s.keys, func(a, b groupKeySpec) bool { return a.key == b.key })
	s.sortN = g.rng.IntN(2) == 0
	if g.rng.IntN(2) == 0 {
		s.limit = 1 + g.rng.IntN(5)
	}
	return s
}

func (s statSpec) query() map[string]any {
	var keys, filter []any
	for i, k := range s.keys {
		m := map[string]any{"key": k.key, "name": fmt.Sprintf("k%d", i)}
		if k.format != "" {
			m["date_format"] = k.format
		}
		keys = append(keys, m)
	}
	for _, c := range s.filter {
		filter = append(filter, map[string]any{"k": c.Key, "v": c.Value, "o": c.Op})
	}
	stages := []any{map[string]any{"group": map[string]any{"keys": keys, "fields": []any{
		map[string]any{"operator": "count", "name": "n"},
		map[string]any{"operator": "sum", "key": "version", "name": "sum"},
		map[string]any{"operator": "average", "key": "version", "name": "avg"},
		map[string]any{"operator": "min", "key": "name", "name": "min_name"},
		map[string]any{"operator": "max", "key": "createdAt", "name": "latest"},
		map[string]any{"operator": "add_to_set", "key": "provider", "name": "providers"},
		map[string]any{"operator": "sum", "key": "tags.tier", "name": "tiers"},
		map[string]any{"operator": "count", "name": "prod", "conditions": []any{map[string]any{"k": "tags.env", "v": "prod"}}},
	}}}}
	if s.sortN {
		stages = append(stages, map[string]any{"sort": []any{map[string]any{"key": "n", "desc": true}}})
	}
	if s.limit > 0 {
		stages = append(stages, map[string]any{"limit": s.limit})
	}
	return map[string]any{"filter": filter, "aggregate": stages}
}

// groupValue is the value a row gives a group key.
func groupValue(r secretRow, k groupKeySpec) (any, kind) {
	pk := keyByName(k.key)
	v := pk.get(r)
	switch k.format {
	case "%Y-%m":
		return v.(time.Time).UTC().Format("2006-01"), kText
	case "day":
		return float64(v.(time.Time).UTC().Day()), kNum
	}
	if v == (jnull{}) {
		v = nil
	}
	return v, pk.kind
}

// out is a value as the API writes it.
func out(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) {
			return int64(x)
		}
		return x
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000000Z")
	case jnull:
		return nil
	}
	return v
}

func evalStat(rows []secretRow, s statSpec) []any {
	type group struct {
		key  []any
		kind []kind
		rows []secretRow
	}
	var groups []*group
	for _, r := range rows {
		if r.Domain != "d1" || slices.ContainsFunc(s.filter, func(c query.Filter) bool { return !evalCond(r, c, queryNow) }) {
			continue
		}
		var key []any
		var kinds []kind
		for _, k := range s.keys {
			v, kd := groupValue(r, k)
			key, kinds = append(key, v), append(kinds, kd)
		}
		i := slices.IndexFunc(groups, func(g *group) bool {
			for j := range key {
				if compareNullsLowest(kinds[j], g.key[j], key[j]) != 0 {
					return false
				}
			}
			return true
		})
		if i < 0 {
			groups = append(groups, &group{key: key, kind: kinds})
			i = len(groups) - 1
		}
		groups[i].rows = append(groups[i].rows, r)
	}
	byKeys := func(a, b *group) int {
		for j := range a.key {
			if c := compareNullsLowest(a.kind[j], a.key[j], b.key[j]); c != 0 {
				return c
			}
		}
		return 0
	}
	slices.SortFunc(groups, byKeys)
	if s.sortN {
		slices.SortStableFunc(groups, func(a, b *group) int { return cmp.Compare(len(b.rows), len(a.rows)) })
	}
	if s.limit > 0 && len(groups) > s.limit {
		groups = groups[:s.limit]
	}
	results := []any{}
	for _, g := range groups {
		res := map[string]any{}
		for j, k := range g.key {
			res[fmt.Sprintf("k%d", j)] = out(k)
		}
		var sum, tiers float64
		var prod int64
		minName := g.rows[0].Name
		latest := g.rows[0].CreatedAt
		providers := []any{}
		for _, r := range g.rows {
			sum += float64(r.Version)
			minName = min(minName, r.Name)
			if r.CreatedAt.After(latest) {
				latest = r.CreatedAt
			}
			if r.Provider != nil && !slices.Contains(providers, any(*r.Provider)) {
				providers = append(providers, *r.Provider)
			}
			if t, ok := tagKey("tier").get(r).(float64); ok {
				tiers += t
			}
			if evalEq(tagKey("env"), tagKey("env").get(r), "prod", true) { // eq ignores case
				prod++
			}
		}
		slices.SortFunc(providers, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
		res["n"] = int64(len(g.rows))
		res["sum"] = out(sum)
		res["avg"] = out(sum / float64(len(g.rows)))
		res["min_name"] = minName
		res["latest"] = out(latest)
		res["providers"] = providers
		res["tiers"] = out(tiers)
		res["prod"] = prod
		results = append(results, res)
	}
	return results
}

// sameResults compares stat results, averages to within rounding.
func sameResults(t *testing.T, want, got []any, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		w, g := want[i].(map[string]any), got[i].(map[string]any)
		for k, wv := range w {
			if wf, ok := wv.(float64); ok {
				gf, ok := g[k].(float64)
				require.True(t, ok, "%s: result %d field %s: want %v, got %#v", msg, i, k, wv, g[k])
				require.InDelta(t, wf, gf, 1e-9, "%s: result %d field %s", msg, i, k)
				g[k] = wv
			}
		}
		require.Equal(t, w, g, "%s: result %d", msg, i)
	}
}

func TestStatProperty(t *testing.T) {
	t.Parallel()
	seed := propSeed(t)
	t.Logf("seed %d (set QUERY_PROPERTY_SEED to replay)", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	pool := newQueryDB(t)
	rows := randomRows(rng, 150)
	insertSecrets(t, pool, rows)
	r := newReader(pool)
	g := &generator{rng: rng, rows: rows}
	const n = 250
	grouped := 0 // queries with more than one group
	for i := range n {
		s := g.stat()
		q := s.query()
		got, err := r.Stat(context.Background(), adminD1, projections.SecretResource, q)
		js, _ := json.Marshal(q)
		require.NoError(t, err, "stat %d: %s", i, js)
		want := evalStat(rows, s)
		sameResults(t, want, got["results"].([]any), fmt.Sprintf("stat %d: %s", i, js))
		if len(want) > 1 {
			grouped++
		}
	}
	t.Logf("%d of %d statistics queries had several groups", grouped, n)
	require.Greater(t, grouped, n/4)
}
