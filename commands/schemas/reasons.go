package schemas

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// collect flattens the library's error tree into field errors.
//
// The library's own messages (LocalizedString / Error) are deliberately never
// used: several of them quote the offending value (const, enum, pattern,
// format, minimum, ...). Reasons are instead built here from the error kind,
// using only schema-side information (expected type, limits, the schema's
// constants/patterns) and property names, never the data value itself.
func collect(dst []FieldError, e *jsonschema.ValidationError) []FieldError {
	if _, ok := e.ErrorKind.(*kind.PropertyNames); !ok && len(e.Causes) > 0 {
		// Wrapper kinds (schema, group, $ref, allOf, anyOf, oneOf, ...):
		// report the underlying failures.
		for _, c := range e.Causes {
			dst = collect(dst, c)
		}
		return dst
	}

	loc := e.InstanceLocation
	at := func(extra ...string) string {
		parts := append(append([]string(nil), loc...), extra...)
		return strings.Join(parts, ".")
	}
	add := func(path, reason string) {
		dst = append(dst, FieldError{Path: path, Reason: reason})
	}

	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, p := range k.Missing {
			add(at(p), "missing required property")
		}
	case *kind.DependentRequired:
		for _, p := range k.Missing {
			add(at(p), fmt.Sprintf("missing property required when %q is present", k.Prop))
		}
	case *kind.Dependency:
		for _, p := range k.Missing {
			add(at(p), fmt.Sprintf("missing property required when %q is present", k.Prop))
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			add(at(p), "property not allowed")
		}
	case *kind.PropertyNames:
		add(at(k.Property), "property name not allowed")
	case *kind.Type:
		add(at(), fmt.Sprintf("expected %s, got %s", strings.Join(k.Want, " or "), k.Got))
	case *kind.Const:
		add(at(), "must be "+schemaValue(k.Want))
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = schemaValue(w)
		}
		add(at(), "must be one of "+strings.Join(want, ", "))
	case *kind.Format:
		add(at(), fmt.Sprintf("not a valid %s", k.Want))
	case *kind.Pattern:
		add(at(), fmt.Sprintf("does not match pattern %q", k.Want))
	case *kind.MinLength:
		if k.Want == 1 {
			add(at(), "must not be empty")
		} else {
			add(at(), fmt.Sprintf("must be at least %d characters long", k.Want))
		}
	case *kind.MaxLength:
		add(at(), fmt.Sprintf("must be at most %d characters long", k.Want))
	case *kind.MinProperties:
		add(at(), fmt.Sprintf("must have at least %d properties", k.Want))
	case *kind.MaxProperties:
		add(at(), fmt.Sprintf("must have at most %d properties", k.Want))
	case *kind.MinItems:
		add(at(), fmt.Sprintf("must have at least %d items", k.Want))
	case *kind.MaxItems:
		add(at(), fmt.Sprintf("must have at most %d items", k.Want))
	case *kind.AdditionalItems:
		add(at(), "additional items not allowed")
	case *kind.UniqueItems:
		add(at(), fmt.Sprintf("items at %d and %d are equal", k.Duplicates[0], k.Duplicates[1]))
	case *kind.Contains:
		add(at(), "no item matches the required item schema")
	case *kind.MinContains:
		add(at(), fmt.Sprintf("at least %d items must match the required item schema", k.Want))
	case *kind.MaxContains:
		add(at(), fmt.Sprintf("at most %d items may match the required item schema", k.Want))
	case *kind.Minimum:
		add(at(), "must be >= "+ratString(k.Want))
	case *kind.Maximum:
		add(at(), "must be <= "+ratString(k.Want))
	case *kind.ExclusiveMinimum:
		add(at(), "must be > "+ratString(k.Want))
	case *kind.ExclusiveMaximum:
		add(at(), "must be < "+ratString(k.Want))
	case *kind.MultipleOf:
		add(at(), "must be a multiple of "+ratString(k.Want))
	case *kind.OneOf:
		if len(k.Subschemas) == 0 {
			add(at(), "does not match any allowed alternative")
		} else {
			add(at(), "matches more than one allowed alternative")
		}
	case *kind.AnyOf:
		add(at(), "does not match any allowed alternative")
	case *kind.Not:
		add(at(), "matches a disallowed schema")
	case *kind.FalseSchema:
		add(at(), "not allowed")
	case *kind.InvalidJsonValue:
		add(at(), "unsupported value type")
	case *kind.ContentEncoding:
		add(at(), fmt.Sprintf("not valid %s content", k.Want))
	case *kind.ContentMediaType:
		add(at(), fmt.Sprintf("not valid %s content", k.Want))
	default:
		// Unknown or structural kinds: name the schema keyword only.
		reason := "invalid"
		if kw := e.ErrorKind.KeywordPath(); len(kw) > 0 {
			reason = fmt.Sprintf("fails schema keyword %q", strings.Join(kw, "/"))
		}
		add(at(), reason)
	}
	return dst
}

// schemaValue renders a value taken from the schema (never from data).
func schemaValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "the value defined by the schema"
	}
	return string(b)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "the schema limit"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return strings.TrimRight(strings.TrimRight(r.FloatString(6), "0"), ".")
}
