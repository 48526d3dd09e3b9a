// Package query is the list and statistics query language of the README's query language section
// (Cloudforet core v2) translated to PostgreSQL.
//
// A Resource describes a read-model table (its owner, projections, defines
// one per table). ParseList and ParseStat check a query once, as written
// (Input, or a StatisticsQuery's JSON): aliases resolved, keys resolved
// against the resource's fields or the outputs of earlier stages, values
// checked against the keys' kinds, limits checked. The typed result (Query,
// Stat with its Stages) compiles to one parameterised statement with the
// caller's tenancy scope (Resource.Visibility) in the WHERE: everything a
// caller writes is either looked up or bound, never spliced into SQL.
// Malformed queries are *Error (INVALID_ARGUMENT, or RESOURCE_EXHAUSTED
// when over a limit).
//
// Semantics, following MongoDB and Cloudforet's python-core:
//   - Keys: a field by its GraphQL or Cloudforet name (schemaId, schema_id),
//     or tags.<key> (the rest of the key is the tag name, dots included).
//   - A missing value (SQL NULL, or an absent tag) matches eq null, not,
//     not_in, not_contain and not_contain_in, and never lt/gt/contain/regex.
//     A tag whose value is JSON null exists, and also matches eq null.
//   - eq, in and comparisons are typed: text keys take strings, version
//     takes numbers, times take ISO 8601; a tag value compares only with a
//     value of its JSON type ("1" is not 1).
//   - eq and in ignore the case of strings (python-core's iexact), except
//     on the resource's Exact fields; not and not_in keep it (python-core's
//     ne and nin).
//   - contain* are case-insensitive substrings; regex* are case-insensitive
//     (Cloudforet passes $options: i) in PostgreSQL's regex syntax; both
//     match text fields and string tag values.
//   - match is MongoDB's $elemMatch: some element of an array (a tag, or a
//     push/add_to_set output) is an object whose every given field equals
//     the given JSON value (dotted names reach in; null: missing or null).
//   - datetime_* take ISO 8601 and timediff_* expressions (now, now/d,
//     now/w + 2h, ...; units s m h d w) on time keys; times are UTC.
//   - keyword: python-core's append_keyword_filter: the words (split on
//     spaces) become one contain_in per keyword field, added to filter_or,
//     so any word in any keyword field matches.
//   - Sort: ascending puts missing values first, descending last; ties
//     break on the id, in the direction of the last sort key. Tag values
//     sort in jsonb order: null, strings, numbers, booleans.
//   - only and minimal (the resource's Minimal fields) narrow a list's
//     answer to their union, the id always included (Query.Fields).
//   - merge_objects is MongoDB's $mergeObjects accumulator, in the rows'
//     order: a later row's value of a key wins; non-objects are skipped.
package query
