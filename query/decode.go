package query

// Decoding helpers for Cloudforet JSON (map[string]any, as GraphQL's Any
// scalar or encoding/json hands it over): aliases and option names.

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// --- parsing helpers --------------------------------------------------------

// pick returns the first of names present in m.
func pick(m map[string]any, names ...string) (any, bool) {
	for _, n := range names {
		if v, ok := m[n]; ok {
			return v, true
		}
	}
	return nil, false
}

// onlyKeys rejects keys of m that are not allowed.
func onlyKeys(m map[string]any, what string, allowed ...string) error {
	var bad []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return qerr("unknown %s option %q (allowed: %s)", what, bad[0], strings.Join(allowed, ", "))
}

// str reads an optional string option under any of names.
func str(m map[string]any, label string, names ...string) (string, error) {
	v, ok := pick(m, names...)
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", qerr("%s must be a string", label)
	}
	return s, nil
}

func optList(m map[string]any, name string) ([]any, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, qerr("%s must be a list", name)
	}
	return l, nil
}

func parsePage(v any) (Page, error) {
	if v == nil {
		return Page{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return Page{}, qerr("page must be an object {start, limit}")
	}
	if err := onlyKeys(m, "page", "start", "limit"); err != nil {
		return Page{}, err
	}
	var p Page
	for name, dst := range map[string]*int{"start": &p.Start, "limit": &p.Limit} {
		raw, ok := m[name]
		if !ok || raw == nil {
			continue
		}
		n, ok := integer(raw)
		if !ok || n < 0 || n > math.MaxInt32 {
			return Page{}, qerr("page.%s must be a non-negative integer", name)
		}
		*dst = int(n)
	}
	return p, nil
}

// parseConditions reads [{k, v, o}] (or {key, value, operator}).
func parseConditions(field string, v any) ([]Filter, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, qerr("%s must be a list of {k, v, o}", field)
	}
	out := make([]Filter, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, qerr("%s[%d] must be an object {k, v, o}", field, i)
		}
		if err := onlyKeys(m, fmt.Sprintf("%s[%d]", field, i), "k", "key", "v", "value", "o", "operator"); err != nil {
			return nil, err
		}
		key, err := str(m, fmt.Sprintf("%s[%d].k", field, i), "k", "key")
		if err != nil {
			return nil, err
		}
		op, err := str(m, fmt.Sprintf("%s[%d].o", field, i), "o", "operator")
		if err != nil {
			return nil, err
		}
		val, _ := pick(m, "v", "value")
		if strings.TrimSpace(key) == "" {
			return nil, qerr("%s[%d]: k is required", field, i)
		}
		out = append(out, Filter{Key: key, Value: val, Op: op})
	}
	return out, nil
}
