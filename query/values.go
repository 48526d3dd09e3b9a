package query

// Values as callers write them (JSON decoded by GraphQL or encoding/json),
// checked and converted before they are bound.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func asList(v any) ([]any, bool) {
	switch l := v.(type) {
	case []any:
		return l, true
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

// number accepts JSON numbers in every form a decoder hands over, and
// numeric strings.
func number(v any) (any, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case float32:
		return number(float64(n))
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, false
		}
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
		return n, true
	case json.Number:
		return number(string(n))
	case string:
		if i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64); err == nil {
			return i, true
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(n), 64); err == nil {
			return number(f)
		}
	}
	return nil, false
}

// jsonValue is v as JSON text, for comparison with a JSON value.
func jsonValue(v any) (string, error) {
	switch x := v.(type) {
	case json.Number:
		if _, ok := number(x); !ok {
			return "", errors.New("not a number")
		}
		return string(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", errors.New("not a number")
		}
	}
	js, err := json.Marshal(v)
	if err != nil {
		return "", errors.New("value is not JSON")
	}
	return string(js), nil
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	if _, ok := number(v); ok {
		return "number"
	}
	return ""
}

// isoLayouts are the ISO 8601 forms a time value may take; without a zone,
// UTC.
var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func isoTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case string:
		s := strings.TrimSpace(t)
		for _, layout := range isoLayouts {
			if at, err := time.Parse(layout, s); err == nil {
				return at, nil
			}
		}
	}
	return time.Time{}, errors.New("not an ISO 8601 time")
}

var (
	timediffBase   = regexp.MustCompile(`^now\s*(?:/\s*([smhdw]))?`)
	timediffOffset = regexp.MustCompile(`^([+-])\s*(\d+)\s*([smhdw])`)
)

var timediffUnits = map[string]time.Duration{
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

// timediff evaluates a Cloudforet time expression: "now", optionally
// rounded down to the start of a unit ("now/d"; weeks start on Monday),
// then offsets ("-1d", "+ 2h"). Units: s m h d w. Times are UTC.
func timediff(expr string, now time.Time) (time.Time, error) {
	s := strings.ToLower(strings.TrimSpace(expr))
	m := timediffBase.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, fmt.Errorf("time expression %q must start with \"now\" (as in now-1d, now/d, now/w + 2h)", expr)
	}
	at := now.UTC()
	switch m[1] {
	case "s", "m", "h":
		at = at.Truncate(timediffUnits[m[1]])
	case "d":
		at = time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	case "w":
		day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
		at = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	}
	s = strings.TrimSpace(s[len(m[0]):])
	for s != "" {
		o := timediffOffset.FindStringSubmatch(s)
		if o == nil {
			return time.Time{}, fmt.Errorf("time expression %q: cannot read %q (offsets look like -1d or + 2h; units s m h d w)", expr, s)
		}
		n, err := strconv.ParseInt(o[2], 10, 32)
		if err != nil {
			return time.Time{}, fmt.Errorf("time expression %q: offset too large", expr)
		}
		d := time.Duration(n) * timediffUnits[o[3]]
		if o[1] == "-" {
			d = -d
		}
		at = at.Add(d)
		s = strings.TrimSpace(s[len(o[0]):])
	}
	return at, nil
}

func integer(v any) (int64, bool) {
	switch v.(type) {
	case string, nil:
		return 0, false
	}
	n, ok := number(v)
	if !ok {
		return 0, false
	}
	i, ok := n.(int64)
	return i, ok
}
