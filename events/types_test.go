package events_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
)

func ptr[T any](v T) *T { return &v }

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	sealed := events.Sealed{Nonce: bytes.Repeat([]byte{1}, 12), Ciphertext: []byte{0, 1, 2, 0xff, 0xfe}}
	cases := []struct {
		typ   string
		event any
	}{
		{events.SecretCreatedV1, &events.SecretCreated{
			SecretID: "secret-1a2b3c4d5e6f", Name: "db password", SchemaID: "aws_access_key", Provider: "aws",
			Tags: map[string]any{"env": "prod", "team": "core"}, ResourceGroup: "PROJECT", DomainID: "domain-1",
			WorkspaceID: "ws-1", ProjectID: "project-1", ServiceAccountID: "sa-1", TrustedSecretID: "trusted-secret-1",
			Data: sealed,
		}},
		{events.SecretCreatedV1, &events.SecretCreated{
			SecretID: "secret-000000000000", Name: "minimal", Tags: map[string]any{}, ResourceGroup: "DOMAIN",
			DomainID: "domain-1", Data: sealed,
		}},
		{events.SecretUpdatedV1, &events.SecretUpdated{Name: ptr("renamed"), Tags: map[string]any{"a": "b"}, ProjectID: ptr("project-2")}},
		{events.SecretUpdatedV1, &events.SecretUpdated{ProjectID: ptr("")}},
		{events.SecretUpdatedV1, &events.SecretUpdated{}},
		{events.SecretDataUpdatedV1, &events.SecretDataUpdated{SchemaID: "aws_access_key", Provider: "aws", Data: sealed}},
		{events.SecretDeletedV1, &events.SecretDeleted{}},
		{events.UserSecretCreatedV1, &events.UserSecretCreated{
			UserSecretID: "user-secret-1a2b3c4d5e6f", Name: "mine", SchemaID: "s", Provider: "p",
			Tags: map[string]any{"k": "v"}, DomainID: "domain-1", UserID: "alice", Data: sealed,
		}},
		{events.UserSecretUpdatedV1, &events.UserSecretUpdated{Name: ptr("new"), Tags: map[string]any{"x": "y"}}},
		{events.UserSecretDataUpdatedV1, &events.UserSecretDataUpdated{SchemaID: "s", Provider: "p", Data: sealed}},
		{events.UserSecretDeletedV1, &events.UserSecretDeleted{}},
		{events.TrustedSecretCreatedV1, &events.TrustedSecretCreated{
			TrustedSecretID: "trusted-secret-1a2b3c4d5e6f", Name: "org root", SchemaID: "aws_access_key", Provider: "aws",
			Tags: map[string]any{"k": "v"}, TrustedAccountID: "ta-1", ResourceGroup: "WORKSPACE", DomainID: "domain-1",
			WorkspaceID: "ws-1", Data: sealed,
		}},
		{events.TrustedSecretCreatedV1, &events.TrustedSecretCreated{
			TrustedSecretID: "trusted-secret-000000000000", Name: "minimal", Tags: map[string]any{}, ResourceGroup: "DOMAIN",
			DomainID: "domain-1", Data: sealed,
		}},
		{events.TrustedSecretUpdatedV1, &events.TrustedSecretUpdated{Name: ptr("new"), Tags: map[string]any{"x": "y"}}},
		{events.TrustedSecretDataUpdatedV1, &events.TrustedSecretDataUpdated{SchemaID: "s", Provider: "p", Data: sealed}},
		{events.TrustedSecretDeletedV1, &events.TrustedSecretDeleted{}},
		{events.TrustedSecretDataReadV1, &events.TrustedSecretDataRead{TrustedSecretID: "trusted-secret-1a2b3c4d5e6f", DataVersion: 2, ViaSecretID: "secret-1a2b3c4d5e6f"}},
		{events.SecretLinkChangedV1, &events.SecretLinkChanged{TrustedSecretID: "trusted-secret-1a2b3c4d5e6f"}},
		{events.SecretLinkChangedV1, &events.SecretLinkChanged{}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.typ] = true
		t.Run(c.typ, func(t *testing.T) {
			t.Parallel()
			data, err := events.Encode(c.event)
			require.NoError(t, err)
			got, err := events.Decode(c.typ, data)
			require.NoError(t, err)
			require.IsType(t, c.event, got, "Decode returns a pointer to the type's struct")
			require.Equal(t, c.event, got)

			again, err := events.Encode(got)
			require.NoError(t, err)
			require.JSONEq(t, string(data), string(again))
		})
	}
	for _, typ := range []string{
		events.SecretCreatedV1, events.SecretUpdatedV1, events.SecretDataUpdatedV1, events.SecretDeletedV1,
		events.UserSecretCreatedV1, events.UserSecretUpdatedV1, events.UserSecretDataUpdatedV1, events.UserSecretDeletedV1,
		events.TrustedSecretCreatedV1, events.TrustedSecretUpdatedV1, events.TrustedSecretDataUpdatedV1,
		events.TrustedSecretDeletedV1, events.TrustedSecretDataReadV1, events.SecretLinkChangedV1,
	} {
		require.True(t, covered[typ], "no round trip case for %s", typ)
	}
}

func TestEncodeKeepsOnlyCiphertext(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, 32)
	plaintext := []byte(`{"password":"hunter2-very-secret"}`)
	sealed, err := events.Seal(key, "secret-1", 1, plaintext)
	require.NoError(t, err)
	data, err := events.Encode(events.SecretCreated{SecretID: "secret-1", Name: "n", DomainID: "d", Data: sealed})
	require.NoError(t, err)
	require.NotContains(t, string(data), "hunter2")

	got, err := events.Decode(events.SecretCreatedV1, data)
	require.NoError(t, err)
	opened, err := events.Open(key, "secret-1", 1, got.(*events.SecretCreated).Data)
	require.NoError(t, err)
	require.Equal(t, plaintext, opened)
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, typ, data, wantErr string
	}{
		{"unknown type", "SecretExploded.v1", `{}`, `unknown event type "SecretExploded.v1"`},
		{"unknown version", "SecretCreated.v9", `{}`, "unknown event type"},
		{"unversioned name", "SecretCreated", `{}`, "unknown event type"},
		{"empty type", "", `{}`, "unknown event type"},
		{"not JSON", events.SecretCreatedV1, `not json`, "decode SecretCreated.v1"},
		{"wrong field type", events.SecretUpdatedV1, `{"name": 42}`, "decode SecretUpdated.v1"},
		{"sealed data not base64", events.SecretDataUpdatedV1, `{"data":{"nonce":"!!","ct":""}}`, "decode SecretDataUpdated.v1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := events.Decode(c.typ, []byte(c.data))
			require.ErrorContains(t, err, c.wantErr)
			require.Nil(t, got)
		})
	}
}

func TestBaseName(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		events.SecretCreatedV1:         "SecretCreated",
		events.SecretUpdatedV1:         "SecretUpdated",
		events.SecretDataUpdatedV1:     "SecretDataUpdated",
		events.SecretDeletedV1:         "SecretDeleted",
		events.UserSecretCreatedV1:     "UserSecretCreated",
		events.UserSecretUpdatedV1:     "UserSecretUpdated",
		events.UserSecretDataUpdatedV1: "UserSecretDataUpdated",
		events.UserSecretDeletedV1:     "UserSecretDeleted",
		"SecretCreated.v12":            "SecretCreated",
		"SecretCreated":                "SecretCreated",
		"Odd.v1.extra":                 "Odd",
		"":                             "",
	}
	for in, want := range cases {
		require.Equal(t, want, events.BaseName(in), "BaseName(%q)", in)
	}
}
