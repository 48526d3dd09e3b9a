package graph

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
)

// Limits bound what one GraphQL request may cost. They are checked before
// any expensive work: the document's shape right after a linear,
// token-bounded parse and before gqlparser's validation (whose
// field-merging rule is quadratic in the number of fields), the variables'
// shape before they are coerced, complexity before execution, and
// concurrency before a query touches the database. A zero field takes its
// default (DefaultLimits).
type Limits struct {
	// MaxTokens bounds the lexical tokens of a query document (5000).
	MaxTokens int
	// MaxFields bounds the fields of a document, counting each fragment
	// where it is spread (500).
	MaxFields int
	// MaxDepth bounds the nesting of selection sets (15; the standard
	// introspection query needs 13).
	MaxDepth int
	// MaxAliases bounds the aliased fields of a document (20).
	MaxAliases int
	// MaxRootFields bounds the top-level fields of an operation (10).
	MaxRootFields int
	// MaxComplexity bounds the operation's cost: 1 per field, list fields
	// multiplied by their page size (25000).
	MaxComplexity int
	// MaxInputDepth bounds the nesting of input values: arguments written in
	// the document and variables (16).
	MaxInputDepth int
	// MaxInputValues bounds the values (scalars, list items, object fields)
	// of the variables and of the document's arguments (10000).
	MaxInputValues int
	// RequestConcurrency bounds the root query fields of one request that
	// run against the database at once (4).
	RequestConcurrency int
	// CallerConcurrency bounds the root query fields of one caller (token
	// subject in its domain) running at once, across requests (8).
	CallerConcurrency int
	// DomainConcurrency bounds the root query fields of one domain running
	// at once, across callers (16).
	DomainConcurrency int
	// QueueWait is how long a query waits for a free slot before it is
	// RESOURCE_EXHAUSTED (5s).
	QueueWait time.Duration
	// VerifyInterval is the least time between two verifyLog runs of one
	// domain (1s); a run that took d also holds the next one off for 10·d.
	VerifyInterval time.Duration
}

// DefaultLimits are the GraphQL limits unless configured.
func DefaultLimits() Limits {
	return Limits{
		MaxTokens:          5000,
		MaxFields:          500,
		MaxDepth:           15,
		MaxAliases:         20,
		MaxRootFields:      10,
		MaxComplexity:      25000,
		MaxInputDepth:      16,
		MaxInputValues:     10000,
		RequestConcurrency: 4,
		CallerConcurrency:  8,
		DomainConcurrency:  16,
		QueueWait:          5 * time.Second,
		VerifyInterval:     time.Second,
	}
}

// WithDefaults fills every zero field from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, def *int }{
		{&l.MaxTokens, &d.MaxTokens}, {&l.MaxFields, &d.MaxFields}, {&l.MaxDepth, &d.MaxDepth},
		{&l.MaxAliases, &d.MaxAliases}, {&l.MaxRootFields, &d.MaxRootFields}, {&l.MaxComplexity, &d.MaxComplexity},
		{&l.MaxInputDepth, &d.MaxInputDepth}, {&l.MaxInputValues, &d.MaxInputValues},
		{&l.RequestConcurrency, &d.RequestConcurrency}, {&l.CallerConcurrency, &d.CallerConcurrency},
		{&l.DomainConcurrency, &d.DomainConcurrency},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if l.QueueWait <= 0 {
		l.QueueWait = d.QueueWait
	}
	if l.VerifyInterval <= 0 {
		l.VerifyInterval = d.VerifyInterval
	}
	return l
}

// exhausted is a RESOURCE_EXHAUSTED error as gqlgen's extensions return them.
func exhausted(path ast.Path, format string, args ...any) *gqlerror.Error {
	msg := fmt.Sprintf(format, args...)
	return &gqlerror.Error{Message: msg, Path: path, Err: &commands.Error{Code: commands.ResourceExhausted, Message: msg}}
}

// DocumentLimits is a gqlgen extension that refuses a request whose
// variables or document are over the Limits, before gqlgen parses and
// validates the document itself. The parse here stops at MaxTokens, and
// everything after it is linear in the document; documents that passed are
// remembered, so a client's repeated operations are parsed once.
type DocumentLimits struct {
	lim  Limits
	seen *lru.LRU[bool]
}

// NewDocumentLimits checks documents and variables against lim.
func NewDocumentLimits(lim Limits) *DocumentLimits {
	return &DocumentLimits{lim: lim.WithDefaults(), seen: lru.New[bool](1000)}
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = &DocumentLimits{}

// ExtensionName names the extension.
func (d *DocumentLimits) ExtensionName() string { return "DocumentLimits" }

// Validate accepts every schema.
func (d *DocumentLimits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters checks the request before gqlgen parses it.
func (d *DocumentLimits) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	values := 0
	if err := d.checkJSON(p.Variables, 1, &values); err != nil {
		return err
	}
	if ok, _ := d.seen.Get(ctx, p.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, d.lim.MaxTokens)
	if err != nil {
		if gqlErr, ok := err.(*gqlerror.Error); ok && isTokenLimit(gqlErr.Message) {
			return exhausted(nil, "the query has more than %d tokens (SECRETLOG_MAX_QUERY_TOKENS)", d.lim.MaxTokens)
		}
		return nil // gqlgen reports the syntax error itself
	}
	if err := d.checkDocument(doc, values); err != nil {
		return err
	}
	d.seen.Add(ctx, p.Query, true)
	return nil
}

func isTokenLimit(msg string) bool {
	var n int
	_, err := fmt.Sscanf(msg, "exceeded token limit of %d", &n)
	return err == nil
}

// checkJSON bounds the depth and size of a decoded JSON value (variables).
func (d *DocumentLimits) checkJSON(v any, depth int, values *int) *gqlerror.Error {
	if depth > d.lim.MaxInputDepth {
		return exhausted(nil, "the variables are nested more than %d levels deep (SECRETLOG_MAX_INPUT_DEPTH)", d.lim.MaxInputDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if err := d.count(values, "variables"); err != nil {
				return err
			}
			if err := d.checkJSON(e, depth+1, values); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := d.count(values, "variables"); err != nil {
				return err
			}
			if err := d.checkJSON(e, depth+1, values); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *DocumentLimits) count(values *int, what string) *gqlerror.Error {
	*values++
	if *values > d.lim.MaxInputValues {
		return exhausted(nil, "the %s hold more than %d values (SECRETLOG_MAX_INPUT_VALUES)", what, d.lim.MaxInputValues)
	}
	return nil
}

// docWalk counts a document's fields, aliases and depth.
type docWalk struct {
	d         *DocumentLimits
	doc       *ast.QueryDocument
	fields    int
	aliases   int
	visits    int
	values    int
	spreading map[string]bool // fragments being expanded, against cycles
}

// checkDocument checks every operation (fragments expanded where spread)
// and every fragment definition as written: validation reads them all.
func (d *DocumentLimits) checkDocument(doc *ast.QueryDocument, values int) *gqlerror.Error {
	w := &docWalk{d: d, doc: doc, values: values, spreading: map[string]bool{}}
	// The document as written: validation works on every selection set.
	for _, op := range doc.Operations {
		if err := w.inputs(op.VariableDefinitions, op.Directives); err != nil {
			return err
		}
		if err := w.raw(op.SelectionSet); err != nil {
			return err
		}
	}
	for _, f := range doc.Fragments {
		if err := w.raw(f.SelectionSet); err != nil {
			return err
		}
	}
	// Each operation as it executes.
	for _, op := range doc.Operations {
		w.fields, w.aliases, w.visits = 0, 0, 0
		roots := 0
		if err := w.expand(op.SelectionSet, 1, &roots); err != nil {
			return err
		}
	}
	return nil
}

// raw counts the fields written in set and checks their arguments.
func (w *docWalk) raw(set ast.SelectionSet) *gqlerror.Error {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			w.fields++
			if w.fields > w.d.lim.MaxFields {
				return exhausted(nil, "the query has more than %d fields (SECRETLOG_MAX_QUERY_FIELDS)", w.d.lim.MaxFields)
			}
			for _, a := range s.Arguments {
				if err := w.value(a.Value, 1); err != nil {
					return err
				}
			}
			if err := w.inputs(nil, s.Directives); err != nil {
				return err
			}
			if err := w.raw(s.SelectionSet); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := w.raw(s.SelectionSet); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *docWalk) inputs(vars ast.VariableDefinitionList, dirs ast.DirectiveList) *gqlerror.Error {
	for _, v := range vars {
		if v.DefaultValue != nil {
			if err := w.value(v.DefaultValue, 1); err != nil {
				return err
			}
		}
	}
	for _, dir := range dirs {
		for _, a := range dir.Arguments {
			if err := w.value(a.Value, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// value bounds the depth and size of an input value written in the document.
func (w *docWalk) value(v *ast.Value, depth int) *gqlerror.Error {
	if v == nil {
		return nil
	}
	if depth > w.d.lim.MaxInputDepth {
		return exhausted(nil, "an argument is nested more than %d levels deep (SECRETLOG_MAX_INPUT_DEPTH)", w.d.lim.MaxInputDepth)
	}
	if err := w.d.count(&w.values, "arguments and variables"); err != nil {
		return err
	}
	for _, c := range v.Children {
		if err := w.value(c.Value, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// expand walks an operation's selections with fragments spread, as it
// executes: fields, aliases, depth and root fields.
func (w *docWalk) expand(set ast.SelectionSet, depth int, roots *int) *gqlerror.Error {
	lim := w.d.lim
	if depth > lim.MaxDepth {
		return exhausted(nil, "the query is nested more than %d levels deep (SECRETLOG_MAX_QUERY_DEPTH)", lim.MaxDepth)
	}
	for _, sel := range set {
		// Spreads count too, so fragments that only spread others stay bounded.
		w.visits++
		if w.visits > 4*lim.MaxFields {
			return exhausted(nil, "the query has more than %d fields (SECRETLOG_MAX_QUERY_FIELDS)", lim.MaxFields)
		}
		switch s := sel.(type) {
		case *ast.Field:
			w.fields++
			if w.fields > lim.MaxFields {
				return exhausted(nil, "the query has more than %d fields (SECRETLOG_MAX_QUERY_FIELDS)", lim.MaxFields)
			}
			if s.Alias != "" && s.Alias != s.Name {
				w.aliases++
				if w.aliases > lim.MaxAliases {
					return exhausted(nil, "the query has more than %d aliases (SECRETLOG_MAX_QUERY_ALIASES)", lim.MaxAliases)
				}
			}
			if roots != nil {
				*roots++
				if *roots > lim.MaxRootFields {
					return exhausted(nil, "the operation has more than %d top-level fields (SECRETLOG_MAX_ROOT_FIELDS)", lim.MaxRootFields)
				}
			}
			if len(s.SelectionSet) > 0 {
				if err := w.expand(s.SelectionSet, depth+1, nil); err != nil {
					return err
				}
			}
		case *ast.InlineFragment:
			if err := w.expand(s.SelectionSet, depth, roots); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			f := w.doc.Fragments.ForName(s.Name)
			if f == nil || w.spreading[s.Name] {
				continue // unknown or cyclic: validation refuses it
			}
			w.spreading[s.Name] = true
			err := w.expand(f.SelectionSet, depth, roots)
			delete(w.spreading, s.Name)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// ComplexityLimit is gqlgen's complexity limit with a RESOURCE_EXHAUSTED
// refusal; field costs come from the schema's ComplexityRoot (NewComplexity).
type ComplexityLimit struct {
	Limit int
	es    graphql.ExecutableSchema
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &ComplexityLimit{}

// ExtensionName names the extension.
func (c *ComplexityLimit) ExtensionName() string { return "ComplexityLimit" }

// Validate keeps the schema.
func (c *ComplexityLimit) Validate(es graphql.ExecutableSchema) error {
	c.es = es
	return nil
}

// MutateOperationContext refuses an operation over the limit before it runs.
func (c *ComplexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	n := complexity.Calculate(ctx, c.es, opCtx.Operation, opCtx.Variables)
	if n > c.Limit {
		return exhausted(nil, "the operation's complexity is %d, over the limit of %d (SECRETLOG_MAX_QUERY_COMPLEXITY): lower page sizes or select fewer fields", n, c.Limit)
	}
	return nil
}

// Concurrency bounds the root query fields running at once per request,
// per caller and per domain, so one request or tenant cannot hold every
// pooled database connection. Mutations run one after the other within a
// request already and queue on their stream's lock; they are not counted.
type Concurrency struct {
	lim     Limits
	callers *keyedSemaphore
	domains *keyedSemaphore
}

// NewConcurrency bounds queries by lim.
func NewConcurrency(lim Limits) *Concurrency {
	lim = lim.WithDefaults()
	return &Concurrency{lim: lim, callers: newKeyedSemaphore(lim.CallerConcurrency), domains: newKeyedSemaphore(lim.DomainConcurrency)}
}

type requestSlotsKey struct{}

// AroundOperations gives each operation its own request-wide slots.
func (c *Concurrency) AroundOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	return next(context.WithValue(ctx, requestSlotsKey{}, make(chan struct{}, c.lim.RequestConcurrency)))
}

// AroundRootFields holds a request, a caller and a domain slot while an
// authenticated query field resolves.
func (c *Concurrency) AroundRootFields(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	opCtx := graphql.GetOperationContext(ctx)
	rf := graphql.GetRootFieldContext(ctx)
	id, authenticated := auth.FromContext(ctx)
	if opCtx == nil || opCtx.Operation == nil || opCtx.Operation.Operation != ast.Query || rf == nil ||
		!authenticated || strings.HasPrefix(rf.Field.Name, "__") {
		return next(ctx)
	}
	release, err := c.acquire(ctx, id)
	if err != nil {
		graphql.AddError(ctx, exhausted(ast.Path{ast.PathName(rf.Field.Alias)}, "%s", err.Error()))
		return graphql.Null
	}
	defer release()
	return next(ctx)
}

func (c *Concurrency) acquire(ctx context.Context, id auth.Identity) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, c.lim.QueueWait)
	defer cancel()
	var releases []func()
	releaseAll := func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}
	if slots, ok := ctx.Value(requestSlotsKey{}).(chan struct{}); ok {
		select {
		case slots <- struct{}{}:
			releases = append(releases, func() { <-slots })
		case <-ctx.Done():
			return nil, fmt.Errorf("this request's other fields held every slot for %s (SECRETLOG_MAX_REQUEST_CONCURRENCY): send fewer fields per request", c.lim.QueueWait)
		}
	}
	rel, err := c.callers.acquire(ctx, id.DomainID+"\x00"+id.Subject)
	if err != nil {
		releaseAll()
		return nil, fmt.Errorf("too many queries of this caller are running (SECRETLOG_MAX_CALLER_CONCURRENCY); retry later")
	}
	releases = append(releases, rel)
	rel, err = c.domains.acquire(ctx, id.DomainID)
	if err != nil {
		releaseAll()
		return nil, fmt.Errorf("too many queries of this domain are running (SECRETLOG_MAX_DOMAIN_CONCURRENCY); retry later")
	}
	releases = append(releases, rel)
	return releaseAll, nil
}

// keyedSemaphore is a counting semaphore per key; idle keys are dropped.
type keyedSemaphore struct {
	n  int
	mu sync.Mutex
	m  map[string]*semaphoreEntry
}

type semaphoreEntry struct {
	slots chan struct{}
	refs  int
}

func newKeyedSemaphore(n int) *keyedSemaphore {
	return &keyedSemaphore{n: n, m: map[string]*semaphoreEntry{}}
}

func (k *keyedSemaphore) acquire(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &semaphoreEntry{slots: make(chan struct{}, k.n)}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	unref := func() {
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots; unref() }, nil
	case <-ctx.Done():
		unref()
		return nil, ctx.Err()
	}
}

// verifyCostFactor spaces a domain's verifications: after one that took d,
// the next starts no sooner than verifyCostFactor*d later, so verifyLog
// keeps the database busy for at most 1/(1+verifyCostFactor) of the time
// per domain, whatever the log's size.
const verifyCostFactor = 10

// VerifyGate rate-limits verifyLog: one at a time on the server, and per
// domain one at a time and spaced by max(interval, verifyCostFactor times
// the last run's duration). A call that would wait longer than maxWait is
// RESOURCE_EXHAUSTED and says when to retry.
type VerifyGate struct {
	interval, maxWait time.Duration
	global            chan struct{}
	mu                sync.Mutex
	domains           map[string]*verifyDomain
}

type verifyDomain struct {
	turn chan struct{}
	next time.Time
	refs int
}

// NewVerifyGate spaces a domain's verifications by at least interval and
// lets a call wait at most maxWait for its turn.
func NewVerifyGate(interval, maxWait time.Duration) *VerifyGate {
	return &VerifyGate{interval: interval, maxWait: maxWait, global: make(chan struct{}, 1), domains: map[string]*verifyDomain{}}
}

func (g *VerifyGate) domain(name string) *verifyDomain {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for k, d := range g.domains {
		if d.refs == 0 && now.After(d.next) {
			delete(g.domains, k)
		}
	}
	d := g.domains[name]
	if d == nil {
		d = &verifyDomain{turn: make(chan struct{}, 1)}
		g.domains[name] = d
	}
	d.refs++
	return d
}

func (g *VerifyGate) release(d *verifyDomain) {
	g.mu.Lock()
	d.refs--
	g.mu.Unlock()
}

// run runs fn when the domain's turn comes.
func (g *VerifyGate) run(ctx context.Context, domain string, fn func(context.Context) error) error {
	waitCtx, cancel := context.WithTimeout(ctx, g.maxWait)
	defer cancel()
	refused := func(format string, args ...any) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &commands.Error{Code: commands.ResourceExhausted, Message: fmt.Sprintf(format, args...)}
	}
	d := g.domain(domain)
	defer g.release(d)
	select {
	case d.turn <- struct{}{}:
	case <-waitCtx.Done():
		return refused("another verifyLog of this domain is running; retry later")
	}
	defer func() { <-d.turn }()
	g.mu.Lock()
	next := d.next
	g.mu.Unlock()
	if wait := time.Until(next); wait > 0 {
		if deadline, ok := waitCtx.Deadline(); ok && deadline.Before(next) {
			return refused("verifyLog ran for this domain moments ago (SECRETLOG_VERIFY_INTERVAL, or %d times its last duration); retry in %s",
				verifyCostFactor, wait.Round(time.Second)+time.Second)
		}
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-waitCtx.Done():
			return refused("verifyLog ran for this domain moments ago; retry later")
		}
	}
	select {
	case g.global <- struct{}{}:
	case <-waitCtx.Done():
		return refused("another verifyLog is running on this server; retry later")
	}
	defer func() { <-g.global }()
	start := time.Now()
	err := fn(ctx)
	took := time.Since(start)
	g.mu.Lock()
	d.next = time.Now().Add(max(g.interval, verifyCostFactor*took))
	g.mu.Unlock()
	return err
}
