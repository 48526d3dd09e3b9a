package query

import (
	"slices"
	"strconv"
	"strings"
)

var groupOperators = []string{"count", "sum", "average", "max", "min", "first", "last", "push", "add_to_set", "merge_objects"}

// groupField decodes one aggregate of a group stage.
func (p *parser) groupField(sc *scope, raw any) (GroupField, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return GroupField{}, qerr("a field must be an object {key, name, operator, conditions}")
	}
	if err := onlyKeys(m, "field", "key", "k", "name", "n", "operator", "o", "conditions", "fields"); err != nil {
		return GroupField{}, err
	}
	var key, name, op string
	for _, o := range []struct {
		dst   *string
		names []string
	}{{&key, []string{"key", "k"}}, {&name, []string{"name", "n"}}, {&op, []string{"operator", "o"}}} {
		v, err := str(m, o.names[0], o.names...)
		if err != nil {
			return GroupField{}, err
		}
		*o.dst = v
	}
	if !slices.Contains(groupOperators, op) {
		return GroupField{}, qerr("unknown operator %q (operators: %s)", op, strings.Join(groupOperators, ", "))
	}
	if name == "" {
		name = cmpOr(key, op)
	}
	f := GroupField{Name: name, Op: op}
	_, hasSub := m["fields"]
	if hasSub && op != "push" {
		return GroupField{}, qerr("field %q: fields is for the push operator only", name)
	}
	if raw, ok := m["conditions"]; ok && raw != nil {
		conds, err := parseConditions("conditions", raw)
		if err != nil {
			return GroupField{}, within("field "+strconv.Quote(name), err)
		}
		w, err := p.where(sc, conds, nil)
		if err != nil {
			return GroupField{}, within("field "+strconv.Quote(name)+" conditions", err)
		}
		f.Where = w.And
	}
	return p.groupOperand(sc, f, key, m["fields"], hasSub)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// groupOperand resolves what the field's operator aggregates.
func (p *parser) groupOperand(sc *scope, f GroupField, key string, sub any, hasSub bool) (GroupField, error) {
	if f.Op == "count" {
		if key != "" {
			// Cloudforet counts rows whatever the key; the key must still exist.
			if _, err := sc.resolve(key); err != nil {
				return GroupField{}, err
			}
		}
		return f, nil
	}
	if f.Op == "push" || f.Op == "add_to_set" || f.Op == "merge_objects" {
		p.accumulators++
		if max := p.lim.MaxStatAccumulators; p.accumulators > max {
			return GroupField{}, overLimit("more than %d push, add_to_set and merge_objects fields in one query (SECRETLOG_MAX_STAT_ACCUMULATORS)", max)
		}
	}
	if f.Op == "push" && hasSub {
		var err error
		f.Push, err = pushFields(sc, f.Name, sub)
		return f, err
	}
	if key == "" {
		return GroupField{}, qerr("field %q: operator %q needs a key", f.Name, f.Op)
	}
	ref, err := sc.resolve(key)
	if err != nil {
		return GroupField{}, err
	}
	switch {
	case (f.Op == "sum" || f.Op == "average") && ref.Kind != KindInt && ref.Kind != KindJSON:
		return GroupField{}, qerr("field %q: operator %q needs a numeric key, and %q is a %s", f.Name, f.Op, key, ref.Kind)
	case f.Op == "merge_objects" && ref.Kind != KindJSON:
		return GroupField{}, qerr("field %q: operator \"merge_objects\" needs an object key (such as tags), and %q is a %s", f.Name, key, ref.Kind)
	}
	f.Ref = &ref
	return f, nil
}

// pushFields decodes push's fields: [{key, name}].
func pushFields(sc *scope, name string, raw any) ([]PushField, error) {
	list, ok := raw.([]any)
	if !ok || len(list) == 0 || len(list) > maxStageItems {
		return nil, qerr("field %q: fields must be a list of 1 to 50 {key, name}", name)
	}
	var out []PushField
	for _, item := range list {
		sub, ok := item.(map[string]any)
		if !ok {
			return nil, qerr("field %q: fields must be a list of {key, name}", name)
		}
		if err := onlyKeys(sub, "push field", "key", "k", "name", "n"); err != nil {
			return nil, err
		}
		k, err := str(sub, "key", "key", "k")
		if err != nil {
			return nil, err
		}
		n, err := str(sub, "name", "name", "n")
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, qerr("field %q: every push field needs a key", name)
		}
		ref, err := sc.resolve(k)
		if err != nil {
			return nil, err
		}
		out = append(out, PushField{Name: cmpOr(n, k), Ref: ref})
	}
	return out, nil
}

func (f GroupField) kind() Kind {
	switch f.Op {
	case "count", "sum", "average":
		return KindInt
	case "push", "add_to_set", "merge_objects":
		return KindJSON
	}
	return f.Ref.Kind
}

var projectOperators = []string{"size"}

// project: {fields: [{key, name, operator}], exclude_keys}.
func (p *parser) project(sc *scope, opts any) (Stage, *scope, error) {
	m, ok := opts.(map[string]any)
	if !ok {
		return nil, nil, qerr("must be an object {fields, exclude_keys}")
	}
	if err := onlyKeys(m, "project", "fields", "exclude_keys", "excludeKeys", "only_keys", "onlyKeys"); err != nil {
		return nil, nil, err
	}
	fields, err := optList(m, "fields")
	if err != nil {
		return nil, nil, err
	}
	if len(fields) == 0 {
		return nil, nil, qerr("fields is required")
	}
	if len(fields) > maxStageItems {
		return nil, nil, overLimit("more than %d fields in one project stage", maxStageItems)
	}
	var st ProjectStage
	if v, ok := pick(m, "exclude_keys", "excludeKeys"); ok && v != nil {
		if st.ExcludeKeys, ok = v.(bool); !ok {
			return nil, nil, qerr("exclude_keys must be true or false")
		}
	}
	if v, ok := pick(m, "only_keys", "onlyKeys"); ok && v != nil {
		if _, ok := v.(bool); !ok {
			return nil, nil, qerr("only_keys must be true or false")
		}
	}
	names := map[string]bool{}
	for i, raw := range fields {
		f, err := projectField(sc, i, raw, names)
		if err != nil {
			return nil, nil, err
		}
		st.Fields = append(st.Fields, f)
	}
	return st, st.scope(sc, names), nil
}

// scope is what the project stage outputs: the group keys it keeps, then
// its fields.
func (st ProjectStage) scope(sc *scope, names map[string]bool) *scope {
	out := &scope{}
	if !st.ExcludeKeys {
		for _, k := range sc.keys {
			if !names[k] {
				out.add(k, sc.kinds[k])
				out.keys = append(out.keys, k)
			}
		}
	}
	for _, f := range st.Fields {
		k := f.Ref.Kind
		if f.Size {
			k = KindInt
		}
		out.add(f.Name, k)
	}
	return out
}

func projectField(sc *scope, i int, raw any, names map[string]bool) (ProjectField, error) {
	fm, ok := raw.(map[string]any)
	if !ok {
		return ProjectField{}, qerr("fields[%d] must be an object {key, name, operator}", i)
	}
	if err := onlyKeys(fm, "project field", "key", "k", "name", "n", "operator", "o"); err != nil {
		return ProjectField{}, within("fields["+strconv.Itoa(i)+"]", err)
	}
	key, err := str(fm, "key", "key", "k")
	if err != nil {
		return ProjectField{}, err
	}
	name, err := str(fm, "name", "name", "n")
	if err != nil {
		return ProjectField{}, err
	}
	op, err := str(fm, "operator", "operator", "o")
	if err != nil {
		return ProjectField{}, err
	}
	key, name = cmpOr(key, name), cmpOr(name, key)
	if key == "" {
		return ProjectField{}, qerr("fields[%d]: key is required", i)
	}
	if names[name] {
		return ProjectField{}, qerr("fields[%d]: name %q is used twice", i, name)
	}
	names[name] = true
	ref, err := sc.resolve(key)
	if err != nil {
		return ProjectField{}, within("fields["+strconv.Itoa(i)+"]", err)
	}
	f := ProjectField{Name: name, Ref: ref}
	switch op {
	case "":
	case "size":
		if ref.Kind != KindJSON {
			return ProjectField{}, qerr("fields[%d]: operator size needs an array (from push or add_to_set), and %q is a %s", i, key, ref.Kind)
		}
		f.Size = true
	default:
		return ProjectField{}, qerr("fields[%d]: unknown operator %q (operators: %s)", i, op, strings.Join(projectOperators, ", "))
	}
	return f, nil
}
