package query

import (
	"slices"
	"sort"
	"strings"
)

// operators lists every filter operator; list operators take a list value.
var operators = map[string]bool{
	"eq": false, "not": false, "lt": false, "lte": false, "gt": false, "gte": false, "exists": false,
	"contain": false, "not_contain": false, "in": true, "not_in": true, "contain_in": true,
	"not_contain_in": true, "regex": false, "regex_in": true, "match": false,
	"datetime_gt": false, "datetime_lt": false, "datetime_gte": false, "datetime_lte": false,
	"timediff_gt": false, "timediff_lt": false, "timediff_gte": false, "timediff_lte": false,
}

func operatorNames() string {
	names := make([]string, 0, len(operators))
	for op := range operators {
		names = append(names, op)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// condition checks one filter condition against the keys of sc.
func (p *parser) condition(sc *scope, f Filter) (Condition, error) {
	op := f.Op
	if op == "" {
		op = "eq"
	}
	listOp, known := operators[op]
	if !known {
		return Condition{}, qerr("unknown operator %q on key %q (operators: %s)", op, f.Key, operatorNames())
	}
	if err := p.countCondition(); err != nil {
		return Condition{}, err
	}
	list, isList := asList(f.Value)
	if max := p.lim.MaxListValues; isList && len(list) > max {
		return Condition{}, overLimit("query too large: operator %q on key %q has a list of %d values, more than the limit of %d (SECRETLOG_MAX_LIST_VALUES)", op, f.Key, len(list), max)
	}
	if listOp && !isList {
		return Condition{}, qerr("operator %q on key %q needs a list value", op, f.Key)
	}
	if !listOp && isList {
		return Condition{}, qerr("operator %q on key %q takes a single value, not a list", op, f.Key)
	}
	ref, err := sc.resolve(f.Key)
	if err != nil {
		return Condition{}, err
	}
	c := Condition{Ref: ref, Op: op}
	if listOp {
		c.Values, err = p.listValues(ref, op, list)
	} else {
		c.Values, err = p.single(ref, op, f.Value)
	}
	if err != nil {
		return Condition{}, err
	}
	if op == "match" {
		c.Values = nil
		if c.Match, err = matchTerms(ref, f.Value); err != nil {
			return Condition{}, err
		}
	}
	// python-core compares eq and in with iexact unless the field is one of
	// the model's exact_fields or the value is null; not and not_in stay exact.
	// Only text and string values have a case.
	textual := ref.Kind == KindText || ref.Kind == KindJSON
	c.Fold = (op == "eq" || op == "in") && textual && (ref.Column == "" || !sc.resExact(ref.Column))
	return c, nil
}

func (sc *scope) resExact(column string) bool {
	return sc.res != nil && sc.res.exact(column)
}

// single checks the value of a single-value operator.
func (p *parser) single(ref Ref, op string, v any) ([]Value, error) {
	key := ref.Key
	switch op {
	case "eq", "not":
		if v == nil {
			return []Value{{}}, nil
		}
		return one(value(ref, op, v))
	case "lt", "lte", "gt", "gte":
		return one(p.compared(ref, op, v))
	case "datetime_lt", "datetime_lte", "datetime_gt", "datetime_gte":
		if ref.Kind != KindTime {
			return nil, qerr("operator %q needs a time key (such as createdAt), not %q", op, key)
		}
		return one(p.compared(ref, op, v))
	case "timediff_lt", "timediff_lte", "timediff_gt", "timediff_gte":
		return one(p.timediff(ref, op, v))
	case "exists":
		want, ok := v.(bool)
		if !ok {
			return nil, qerr("operator \"exists\" on key %q needs true or false", key)
		}
		return []Value{{Raw: want, Param: want}}, nil
	case "contain", "not_contain":
		return one(textValue(ref, op, v, "a string"))
	case "regex":
		return one(p.regex(ref, op, v))
	case "match":
		return nil, nil
	}
	return nil, qerr("unknown operator %q on key %q", op, key)
}

func one(v Value, err error) ([]Value, error) {
	if err != nil {
		return nil, err
	}
	return []Value{v}, nil
}

// listValues checks the items of a list operator.
func (p *parser) listValues(ref Ref, op string, list []any) ([]Value, error) {
	out := make([]Value, 0, len(list))
	for _, v := range list {
		var val Value
		var err error
		switch op {
		case "in", "not_in":
			val, err = listItem(ref, op, v)
		case "contain_in", "not_contain_in":
			val, err = textValue(ref, op, v, "a string")
		case "regex_in":
			val, err = p.regex(ref, op, v)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, val)
	}
	return out, nil
}

// listItem is one item of in/not_in: a single value (lists and objects only
// for JSON keys), or null for a missing value.
func listItem(ref Ref, op string, v any) (Value, error) {
	switch v.(type) {
	case nil:
		return Value{}, nil
	case []any, map[string]any:
		if ref.Kind != KindJSON {
			return Value{}, qerr("operator %q on key %q: list items must be single values", op, ref.Key)
		}
	}
	return value(ref, op, v)
}

// compared is the value of lt, lte, gt, gte: a JSON value compares only
// with a string, a number or a boolean (of its own JSON type).
func (p *parser) compared(ref Ref, op string, v any) (Value, error) {
	if v == nil {
		return Value{}, qerr("operator %q on key %q needs a value, not null", op, ref.Key)
	}
	val, err := value(ref, op, v)
	if err != nil {
		return Value{}, err
	}
	if ref.Kind == KindJSON {
		switch jsonType(v) {
		case "string", "number", "boolean":
		default:
			return Value{}, qerr("operator %q on key %q needs a string or a number", op, ref.Key)
		}
	}
	return val, nil
}

func (p *parser) timediff(ref Ref, op string, v any) (Value, error) {
	if ref.Kind != KindTime {
		return Value{}, qerr("operator %q needs a time key (such as createdAt), not %q", op, ref.Key)
	}
	s, ok := v.(string)
	if !ok {
		return Value{}, qerr("operator %q on key %q needs a time expression such as \"now-1d\"", op, ref.Key)
	}
	at, err := timediff(s, p.now)
	if err != nil {
		return Value{}, qerr("operator %q on key %q: %v", op, ref.Key, err)
	}
	return Value{Raw: s, Param: at}, nil
}

// textValue is the string a substring or regex operator looks for, on a
// text key or a JSON one (which then matches string values only).
func textValue(ref Ref, op string, v any, what string) (Value, error) {
	if ref.Kind != KindText && ref.Kind != KindJSON {
		return Value{}, qerr("operator %q needs a text key, and %q is a %s", op, ref.Key, ref.Kind)
	}
	s, ok := v.(string)
	if !ok {
		return Value{}, qerr("operator %q on key %q needs %s", op, ref.Key, what)
	}
	return Value{Raw: s, Param: s}, nil
}

func (p *parser) regex(ref Ref, op string, v any) (Value, error) {
	val, err := textValue(ref, op, v, "a string (a regular expression)")
	if err != nil {
		return Value{}, err
	}
	if max := p.lim.MaxRegexLength; len(val.Param.(string)) > max {
		return Value{}, overLimit("operator %q on key %q: the regular expression is %d bytes long, more than the limit of %d (SECRETLOG_MAX_REGEX_LENGTH)", op, ref.Key, len(val.Param.(string)), max)
	}
	return val, nil
}

// value checks v against the key's kind and converts it to what is bound.
func value(ref Ref, op string, v any) (Value, error) {
	key := ref.Key
	switch ref.Kind {
	case KindText:
		s, ok := v.(string)
		if !ok {
			return Value{}, qerr("operator %q on key %q needs a string", op, key)
		}
		return Value{Raw: v, Param: s}, nil
	case KindInt:
		n, ok := number(v)
		if !ok {
			return Value{}, qerr("operator %q on key %q needs a number", op, key)
		}
		return Value{Raw: v, Param: n}, nil
	case KindTime:
		t, err := isoTime(v)
		if err != nil {
			return Value{}, qerr("operator %q on key %q needs an ISO 8601 time such as 2024-05-01T12:00:00Z", op, key)
		}
		return Value{Raw: v, Param: t}, nil
	case KindJSON:
		js, err := jsonValue(v)
		if err != nil {
			return Value{}, qerr("operator %q on key %q: %v", op, key, err)
		}
		return Value{Raw: v, Param: js}, nil
	}
	return Value{}, qerr("key %q cannot be compared", key)
}

// matchTerms checks the value of the match operator, MongoDB's $elemMatch
// as python-core passes it: an object whose fields an element of the
// array must all equal (a dotted name reaches into the element).
func matchTerms(ref Ref, v any) ([]MatchTerm, error) {
	if ref.Kind != KindJSON {
		return nil, qerr("operator \"match\" needs an array key (a tag, or a push or add_to_set output), and %q is a %s", ref.Key, ref.Kind)
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, qerr("operator \"match\" on key %q needs an object of fields to match, such as {\"name\": \"x\"}", ref.Key)
	}
	if len(m) > maxStageItems {
		return nil, overLimit("operator \"match\" on key %q: more than %d fields", ref.Key, maxStageItems)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	terms := make([]MatchTerm, 0, len(names))
	for _, k := range names {
		if k == "" || strings.HasPrefix(k, "$") || operatorObject(m[k]) {
			return nil, qerr("operator \"match\" on key %q: field %q: only equality is supported, not query operators", ref.Key, k)
		}
		t := MatchTerm{Path: strings.Split(k, "."), Null: m[k] == nil}
		if !t.Null {
			js, err := jsonValue(m[k])
			if err != nil {
				return nil, qerr("operator \"match\" on key %q: field %q: %v", ref.Key, k, err)
			}
			t.JSON = js
		}
		terms = append(terms, t)
	}
	return terms, nil
}

// operatorObject reports whether v is a MongoDB operator object ({"$gt": 1}).
func operatorObject(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for k := range m {
		if strings.HasPrefix(k, "$") {
			return true
		}
	}
	return false
}
