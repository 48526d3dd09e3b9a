// Package schemas validates secret data against built-in JSON Schemas.
//
// Every secret carries a schema id (for example "aws_access_key") that
// selects the JSON Schema its data must satisfy. The schemas are JSON Schema
// draft 2020-12 documents embedded from the defs directory; each one also
// declares, through the custom top-level keyword "x-provider", the provider
// (for example "aws") it belongs to.
//
// Validation errors name the offending fields and the reason but never
// contain any part of the validated data values, so they are safe to log
// and to return to clients.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// providerKeyword is the custom top-level keyword holding the provider of a
// schema definition.
const providerKeyword = "x-provider"

//go:embed defs/*.json
var embeddedDefs embed.FS

// Schema is a registered secret data schema.
type Schema struct {
	ID       string // e.g. "aws_access_key"
	Provider string // e.g. "aws"
	Name     string // human-readable
	// Generated are the fields rotation generates, by name (the property's
	// "x-generate" keyword).
	Generated map[string]Policy
}

// Registry holds compiled schemas; safe for concurrent use.
//
// A Registry is immutable once built.
type Registry struct {
	entries map[string]entry
	list    []Schema // sorted by ID
}

type entry struct {
	schema   Schema
	compiled *jsonschema.Schema
}

var (
	defaultOnce     sync.Once
	defaultRegistry *Registry
)

// Default returns the registry of built-in schemas (compiled once, from JSON
// Schema files embedded from commands/schemas/defs/).
//
// Default panics if the embedded definitions are invalid, which is a
// programming error caught by the package tests.
func Default() *Registry {
	defaultOnce.Do(func() {
		defs, err := fs.Sub(embeddedDefs, "defs")
		if err != nil {
			panic(fmt.Sprintf("schemas: embedded definitions: %v", err))
		}
		r, err := load(defs)
		if err != nil {
			panic(fmt.Sprintf("schemas: embedded definitions: %v", err))
		}
		defaultRegistry = r
	})
	return defaultRegistry
}

// load compiles every *.json file at the root of fsys. A file's name (without
// the .json extension) is the schema id; its "$id" must end in that file name,
// its "title" is the schema name and its "x-provider" the provider.
func load(fsys fs.FS) (*Registry, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("no schema definitions found")
	}

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // "format" is annotation-only in 2020-12 unless asserted.

	type pending struct {
		schema Schema
		url    string
	}
	var all []pending
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: schema must be a JSON object", name)
		}
		id := strings.TrimSuffix(name, ".json")
		url, err := stringKeyword(obj, "$id")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if path.Base(url) != name {
			return nil, fmt.Errorf("%s: $id %q does not end in %q", name, url, name)
		}
		title, err := stringKeyword(obj, "title")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		provider, err := stringKeyword(obj, providerKeyword)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		generated, err := generatedFields(obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, pending{Schema{ID: id, Provider: provider, Name: title, Generated: generated}, url})
	}

	r := &Registry{entries: make(map[string]entry, len(all))}
	for _, p := range all {
		compiled, err := c.Compile(p.url)
		if err != nil {
			return nil, fmt.Errorf("%s.json: %w", p.schema.ID, err)
		}
		r.entries[p.schema.ID] = entry{schema: p.schema, compiled: compiled}
		r.list = append(r.list, p.schema)
	}
	slices.SortFunc(r.list, func(a, b Schema) int { return strings.Compare(a.ID, b.ID) })
	return r, nil
}

func stringKeyword(obj map[string]any, kw string) (string, error) {
	s, ok := obj[kw].(string)
	if !ok || s == "" {
		return "", fmt.Errorf("missing or empty string keyword %q", kw)
	}
	return s, nil
}

// Lookup returns the schema with the id, ok=false if unknown.
func (r *Registry) Lookup(id string) (Schema, bool) {
	e, ok := r.entries[id]
	return e.schema, ok
}

// List returns all schemas sorted by ID.
func (r *Registry) List() []Schema {
	return slices.Clone(r.list)
}

// Validate checks data against the schema id.
//
// An unknown id gives *UnknownSchemaError; invalid data gives
// *ValidationError listing the offending fields. Errors never contain data
// values. A nil data map is validated as an empty object.
func (r *Registry) Validate(id string, data map[string]any) error {
	e, ok := r.entries[id]
	if !ok {
		return &UnknownSchemaError{ID: id}
	}
	doc, fields := normalize(data)
	if len(fields) > 0 {
		return &ValidationError{SchemaID: id, Fields: fields}
	}
	err := e.compiled.Validate(doc)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		// Not expected from the library; do not expose its text.
		return &ValidationError{SchemaID: id, Fields: []FieldError{{Reason: "validation failed"}}}
	}
	fields = collect(nil, verr)
	if len(fields) == 0 {
		fields = []FieldError{{Reason: "validation failed"}}
	}
	return &ValidationError{SchemaID: id, Fields: sortFields(fields)}
}

// normalize converts data into the plain JSON value model the validator
// understands (map[string]any, []any, string, json.Number, bool, nil) via a
// JSON round trip, so that arbitrary Go values (typed slices, nested
// map[string]string, structs, ...) are validated as they would be stored.
// Fields that cannot be encoded as JSON are reported without their value.
func normalize(data map[string]any) (any, []FieldError) {
	if data == nil {
		return map[string]any{}, nil
	}
	raw, err := json.Marshal(data)
	if err == nil {
		var doc any
		doc, err = jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err == nil {
			return doc, nil
		}
	}
	// Find the offending top-level fields; never echo err, whose text may
	// include (parts of) the value.
	var fields []FieldError
	for k, v := range data {
		if _, err := json.Marshal(v); err != nil {
			fields = append(fields, FieldError{Path: k, Reason: "value is not JSON-encodable"})
		}
	}
	if len(fields) == 0 {
		fields = []FieldError{{Reason: "data is not JSON-encodable"}}
	}
	return nil, sortFields(fields)
}

// UnknownSchemaError is returned by Validate for an unregistered schema id.
type UnknownSchemaError struct{ ID string }

func (e *UnknownSchemaError) Error() string {
	return fmt.Sprintf("schemas: unknown schema %q", e.ID)
}

// ValidationError is returned by Validate when data does not satisfy the
// schema. Its Error text names fields and reasons only, never data values.
type ValidationError struct {
	SchemaID string
	Fields   []FieldError
}

func (e *ValidationError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "schemas: invalid data for schema %q: ", e.SchemaID)
	for i, f := range e.Fields {
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(f.String())
	}
	return sb.String()
}

// FieldError describes one failing field.
type FieldError struct {
	// Path is the location of the field inside data, property names (and
	// array indexes) joined with "." and without a leading "data."; e.g.
	// "aws_secret_access_key". It is empty for data itself.
	Path string
	// Reason says why the field is invalid; it never includes the value.
	Reason string
}

// String renders the field error as "data.<path>: <reason>".
func (f FieldError) String() string {
	if f.Path == "" {
		return "data: " + f.Reason
	}
	return "data." + f.Path + ": " + f.Reason
}

func sortFields(fields []FieldError) []FieldError {
	slices.SortFunc(fields, func(a, b FieldError) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return slices.Compact(fields)
}
