package commands

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/secretlog/secretlog/commands/schemas"
)

// Limits from the API contract.
const (
	maxNameLength = 255
	maxIDLength   = 40
	maxDataBytes  = 64 << 10
	maxTagsBytes  = 64 << 10
	maxTagKey     = 255
	// maxTagsDepth and maxDataDepth bound how deeply tags and values nest
	// (an object or array inside the top-level object is depth 2).
	maxTagsDepth = 8
	maxDataDepth = 16
)

// idHexDigits is how many lowercase hex digits follow a resource id's prefix.
const idHexDigits = 12

// checkResourceID accepts only ids of the resource's own form (prefix + 12
// lowercase hex digits). Anything else cannot exist: NOT_FOUND, without
// repeating the id, so no stream other than the resource's own (its access
// stream, another kind's) is ever loaded through it.
func checkResourceID(field, kind, prefix, id string) error {
	if id == "" {
		return invalid(field, "is required")
	}
	hexPart, ok := strings.CutPrefix(id, prefix)
	if !ok || len(hexPart) != idHexDigits || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return &Error{Code: NotFound, Message: kind + " not found (malformed " + field + ")"}
	}
	return nil
}

// checkText rejects what PostgreSQL cannot store in text and jsonb: U+0000
// and invalid UTF-8.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid(field, "must not contain U+0000")
	}
	return nil
}

// checkJSON walks a decoded JSON value: numbers must be finite float64
// values and nesting at most maxDepth deep; with text, strings and keys must
// also be text PostgreSQL can store (values are sealed, so they may hold
// anything JSON can; tags are stored as they are). The messages name the
// field, never the value.
func checkJSON(field string, v any, depth, maxDepth int, text bool) error {
	if depth > maxDepth {
		return invalid(field, "must not nest deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if text {
				if err := checkText(field, k); err != nil {
					return err
				}
			}
			if err := checkJSON(field, e, depth+1, maxDepth, text); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := checkJSON(field, e, depth+1, maxDepth, text); err != nil {
				return err
			}
		}
	case string:
		if text {
			return checkText(field, x)
		}
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return invalid(field, "numbers must be finite and fit a 64-bit float")
		}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return invalid(field, "numbers must be finite and fit a 64-bit float")
		}
	case float32:
		if math.IsInf(float64(x), 0) || math.IsNaN(float64(x)) {
			return invalid(field, "numbers must be finite and fit a 64-bit float")
		}
	case nil, bool, int, int32, int64, uint, uint32, uint64:
	default:
		return invalid(field, "must be JSON")
	}
	return nil
}

func newID(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func checkName(name string) (string, error) {
	if err := checkText("name", name); err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n < 1 || n > maxNameLength {
		return "", invalid("name", "must be 1 to %d characters", maxNameLength)
	}
	return name, nil
}

func checkID(field, v string) error {
	if err := checkText(field, v); err != nil {
		return err
	}
	if len(v) > maxIDLength {
		return invalid(field, "must be at most %d characters", maxIDLength)
	}
	if strings.ContainsAny(v, " \t\r\n") {
		return invalid(field, "must not contain whitespace")
	}
	return nil
}

// checkTags trims string values and bounds the size. Keys may not be empty.
func checkTags(tags map[string]any) (map[string]any, error) {
	if err := checkJSON("tags", map[string]any(tags), 1, maxTagsDepth, true); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(tags))
	for k, v := range tags {
		if k == "" || len(k) > maxTagKey {
			return nil, invalid("tags", "keys must be 1 to %d characters", maxTagKey)
		}
		if s, ok := v.(string); ok {
			v = strings.TrimSpace(s)
		}
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, invalid("tags", "must be a JSON object")
	}
	if len(b) > maxTagsBytes {
		return nil, invalid("tags", "must be at most %d bytes encoded", maxTagsBytes)
	}
	return out, nil
}

// checkData validates data against schemaID (when given) and returns its
// encoding and the schema's provider. Errors never include the data's values.
func checkData(reg *schemas.Registry, schemaID string, data map[string]any) ([]byte, string, error) {
	if len(data) == 0 {
		return nil, "", invalid("data", "must be a non-empty JSON object")
	}
	if err := checkID("schemaId", schemaID); err != nil {
		return nil, "", err
	}
	if err := checkJSON("data", map[string]any(data), 1, maxDataDepth, false); err != nil {
		return nil, "", err
	}
	enc, err := json.Marshal(data)
	if err != nil {
		return nil, "", invalid("data", "must be a JSON object")
	}
	if len(enc) > maxDataBytes {
		return nil, "", invalid("data", "must be at most %d bytes encoded", maxDataBytes)
	}
	if schemaID == "" {
		return enc, "", nil
	}
	schema, ok := reg.Lookup(schemaID)
	if !ok {
		return nil, "", invalid("schemaId", "unknown schema %q", schemaID)
	}
	if err := reg.Validate(schemaID, data); err != nil {
		var ve *schemas.ValidationError
		if errors.As(err, &ve) && len(ve.Fields) > 0 {
			parts := make([]string, len(ve.Fields))
			for i, f := range ve.Fields {
				parts[i] = f.String()
			}
			return nil, "", invalid("data", "does not match schema %q: %s", schemaID, strings.Join(parts, "; "))
		}
		return nil, "", invalid("data", "does not match schema %q", schemaID)
	}
	return enc, schema.Provider, nil
}
