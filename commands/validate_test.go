package commands

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
)

func TestCheckResourceID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		code Code
	}{
		{"secret-0123456789ab", ""},
		{"", InvalidArgument},
		{"secret-0123456789ab:access", NotFound},
		{"secret-0123456789AB", NotFound},
		{"user-secret-0123456789ab", NotFound},
		{"secret-0123456789a", NotFound},
		{"secret-0123456789abc", NotFound},
		{"secret-01234567\x0089ab", NotFound},
	} {
		err := checkResourceID("secretId", "secret", secretIDPrefix, tc.id)
		if tc.code == "" {
			require.NoError(t, err, tc.id)
			continue
		}
		require.Equal(t, tc.code, CodeOf(err), "%q", tc.id)
		if len(tc.id) > 7 {
			require.NotContains(t, err.Error(), tc.id[7:], "the id is not echoed")
		}
	}
}

func nested(depth int) any {
	var v any = "leaf"
	for i := 1; i < depth; i++ {
		v = map[string]any{"k": v}
	}
	return v
}

func TestCheckTagsRejectsWhatCannotBeStored(t *testing.T) {
	for name, tags := range map[string]map[string]any{
		"NUL in a value":        {"env": "a\x00b"},
		"NUL in a key":          {"e\x00nv": "x"},
		"NUL in a nested key":   {"env": map[string]any{"a\x00": 1}},
		"NUL in a list":         {"env": []any{"ok", "a\x00"}},
		"invalid UTF-8":         {"env": "\xff\xfe"},
		"1e400":                 {"n": json.Number("1e400")},
		"-1e400":                {"n": json.Number("-1e400")},
		"too deep":              {"n": nested(maxTagsDepth)},
		"too large":             {"n": strings.Repeat("x", maxTagsBytes)},
		"empty key":             {"": "x"},
		"not a number at all":   {"n": json.Number("0x10")},
		"unsupported Go type":   {"n": struct{}{}},
		"NUL in a deep value":   {"a": map[string]any{"b": map[string]any{"c": "\x00"}}},
		"invalid UTF-8 as key:": {"\xc3": 1},
	} {
		_, err := checkTags(tags)
		require.Error(t, err, name)
		require.Equal(t, InvalidArgument, CodeOf(err), name)
		require.Contains(t, err.Error(), "tags", name)
	}
	ok, err := checkTags(map[string]any{"env": " dev ", "n": json.Number("1.5"), "deep": nested(maxTagsDepth - 1)})
	require.NoError(t, err)
	require.Equal(t, "dev", ok["env"])
}

func TestCheckDataAllowsNULButNotHugeNumbers(t *testing.T) {
	_, _, err := checkData(nil, "", map[string]any{"pw": "a\x00b"})
	require.NoError(t, err, "values are sealed: any JSON string is fine")
	_, _, err = checkData(nil, "", map[string]any{"n": json.Number("1e400")})
	require.Equal(t, InvalidArgument, CodeOf(err))
	_, _, err = checkData(nil, "", map[string]any{"n": nested(maxDataDepth + 1)})
	require.Equal(t, InvalidArgument, CodeOf(err))
	_, err = checkName("bad\x00name")
	require.Equal(t, InvalidArgument, CodeOf(err))
}

func record(t *testing.T, stream string, version int64, typ string, payload any) (events.Record, any) {
	data, err := events.Encode(payload)
	require.NoError(t, err)
	rec := events.Record{Event: events.Event{Type: typ, Data: data, OccurredAt: time.Unix(int64(version), 0).UTC(),
		Metadata: events.Metadata{Actor: events.Actor{Subject: "alice", Role: "DOMAIN_ADMIN", DomainID: "d"}}},
		Stream: stream, Version: version, Hash: []byte{byte(version)}}
	ev, err := events.Decode(typ, data)
	require.NoError(t, err)
	return rec, ev
}

// TestSecretFold: the aggregate's Apply is the one place an event changes a
// secret: reads change nothing, deletion drops the sealed value.
func TestSecretFold(t *testing.T) {
	id := "secret-0123456789ab"
	s := &Secret{}
	steps := []struct {
		typ     string
		payload any
		check   func()
	}{
		{events.SecretCreatedV1, events.SecretCreated{SecretID: id, Name: "n", ResourceGroup: "PROJECT", DomainID: "d",
			WorkspaceID: "w", ProjectID: "p", Data: events.Sealed{Ciphertext: []byte{1}}}, func() {
			require.Equal(t, int64(1), s.DataVersion)
			require.Equal(t, auth.Scope{Group: auth.GroupProject, DomainID: "d", WorkspaceID: "w", ProjectID: "p"}, s.Scope)
		}},
		{events.SecretUpdatedV1, events.SecretUpdated{Name: ptr("m"), ProjectID: ptr("q")}, func() {
			require.Equal(t, "m", s.Name)
			require.Equal(t, "q", s.Scope.ProjectID)
			require.Equal(t, int64(1), s.DataVersion)
		}},
		{events.SecretDataUpdatedV1, events.SecretDataUpdated{Data: events.Sealed{Ciphertext: []byte{2}}}, func() {
			require.Equal(t, int64(2), s.DataVersion)
			require.Equal(t, int64(3), s.DataEventVersion)
		}},
		{events.SecretDataReadV1, events.SecretDataRead{SecretID: id, DataVersion: 2}, func() {
			require.Equal(t, int64(3), s.StreamVersion, "a read is not part of the stream's state")
		}},
		{events.SecretDeletedV1, events.SecretDeleted{}, func() {
			require.False(t, s.Exists())
			require.Empty(t, s.Data.Ciphertext)
		}},
	}
	version := int64(0)
	for _, st := range steps {
		stream := id
		if st.typ == events.SecretDataReadV1 {
			stream = events.AccessStream(id)
		} else {
			version++
		}
		rec, ev := record(t, stream, version, st.typ, st.payload)
		require.NoError(t, s.Apply(rec, ev))
		st.check()
	}
	rec, ev := record(t, id, 9, events.UserSecretDeletedV1, events.UserSecretDeleted{})
	require.Error(t, s.Apply(rec, ev), "another resource's event")
	r, ok := NewResource(events.AccessStream("user-secret-0123456789ab"))
	require.True(t, ok)
	require.Equal(t, "UserSecret", r.Kind())
}

func ptr(s string) *string { return &s }
