package commands

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
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
)

func newID(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n < 1 || n > maxNameLength {
		return "", invalid("name", "must be 1 to %d characters", maxNameLength)
	}
	return name, nil
}

func checkID(field, v string) error {
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
