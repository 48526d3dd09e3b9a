package schemas

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

const canary = "CANARY-9f8e7d"

type schemaFixture struct {
	provider string
	required []string
	optional []string
	valid    map[string]any // all required and optional fields set
}

var fixtures = map[string]schemaFixture{
	"aws_access_key": {
		provider: "aws",
		required: []string{"aws_access_key_id", "aws_secret_access_key"},
		optional: []string{"region_name"},
		valid: map[string]any{
			"aws_access_key_id":     "AKIAIOSFODNN7EXAMPLE",
			"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"region_name":           "us-east-1",
		},
	},
	"aws_assume_role": {
		provider: "aws",
		required: []string{"aws_access_key_id", "aws_secret_access_key", "role_arn"},
		optional: []string{"external_id", "region_name"},
		valid: map[string]any{
			"aws_access_key_id":     "AKIAIOSFODNN7EXAMPLE",
			"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"role_arn":              "arn:aws:iam::123456789012:role/secretlog",
			"external_id":           "ext-123",
			"region_name":           "eu-west-1",
		},
	},
	"google_oauth2_credentials": {
		provider: "google_cloud",
		required: []string{"type", "project_id", "private_key_id", "private_key", "client_email", "client_id"},
		optional: []string{"auth_uri", "token_uri", "auth_provider_x509_cert_url", "client_x509_cert_url"},
		valid: map[string]any{
			"type":                        "service_account",
			"project_id":                  "my-project",
			"private_key_id":              "0123456789abcdef",
			"private_key":                 "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n",
			"client_email":                "svc@my-project.iam.gserviceaccount.com",
			"client_id":                   "123456789012345678901",
			"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
			"token_uri":                   "https://oauth2.googleapis.com/token",
			"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
			"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/svc%40my-project.iam.gserviceaccount.com",
		},
	},
	"azure_client_secret": {
		provider: "azure",
		required: []string{"tenant_id", "subscription_id", "client_id", "client_secret"},
		valid: map[string]any{
			"tenant_id":       "00000000-0000-0000-0000-000000000001",
			"subscription_id": "00000000-0000-0000-0000-000000000002",
			"client_id":       "00000000-0000-0000-0000-000000000003",
			"client_secret":   "s3cr3t~value",
		},
	},
	"basic_auth": {
		provider: "generic",
		required: []string{"username", "password"},
		valid:    map[string]any{"username": "admin", "password": "hunter2"},
	},
	"api_token": {
		provider: "generic",
		required: []string{"token"},
		valid:    map[string]any{"token": "tok_abcdef"},
	},
}

func fixtureIDs() []string {
	return slices.Sorted(maps.Keys(fixtures))
}

// with returns a copy of m with the given changes; a nil value deletes the key.
func with(m map[string]any, changes map[string]any) map[string]any {
	out := maps.Clone(m)
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func only(m map[string]any, keys []string) map[string]any {
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

func requireValidationError(t *testing.T, err error, id string) *ValidationError {
	t.Helper()
	require.Error(t, err)
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, id, verr.SchemaID)
	require.NotEmpty(t, verr.Fields)
	return verr
}

func TestDefaultIsCompiledOnce(t *testing.T) {
	t.Parallel()
	require.Same(t, Default(), Default())
}

func TestListSortedAndComplete(t *testing.T) {
	t.Parallel()
	list := Default().List()
	require.Len(t, list, len(fixtures))
	require.True(t, slices.IsSortedFunc(list, func(a, b Schema) int { return strings.Compare(a.ID, b.ID) }))

	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.ID
		require.NotEmpty(t, s.Name, s.ID)
		require.Equal(t, fixtures[s.ID].provider, s.Provider, s.ID)
	}
	require.Equal(t, fixtureIDs(), ids)

	// List returns a copy.
	list[0].ID = "mutated"
	require.NotEqual(t, "mutated", Default().List()[0].ID)
}

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id       string
		provider string
	}{
		{"aws_access_key", "aws"},
		{"aws_assume_role", "aws"},
		{"google_oauth2_credentials", "google_cloud"},
		{"azure_client_secret", "azure"},
		{"basic_auth", "generic"},
		{"api_token", "generic"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			s, ok := Default().Lookup(tt.id)
			require.True(t, ok)
			require.Equal(t, tt.id, s.ID)
			require.Equal(t, tt.provider, s.Provider)
			require.NotEmpty(t, s.Name)
		})
	}

	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		s, ok := Default().Lookup("nope")
		require.False(t, ok)
		require.Zero(t, s)
	})
}

func TestValidateValid(t *testing.T) {
	t.Parallel()
	for _, id := range fixtureIDs() {
		f := fixtures[id]
		tests := []struct {
			name string
			data map[string]any
		}{
			{"all fields", f.valid},
			{"required only", only(f.valid, f.required)},
			{"additional properties allowed", with(f.valid, map[string]any{"note": "extra", "labels": map[string]any{"a": 1}})},
		}
		for _, tt := range tests {
			t.Run(id+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				require.NoError(t, Default().Validate(id, tt.data))
			})
		}
	}
}

func TestValidateMissingRequired(t *testing.T) {
	t.Parallel()
	for _, id := range fixtureIDs() {
		f := fixtures[id]
		for _, field := range f.required {
			t.Run(id+"/"+field, func(t *testing.T) {
				t.Parallel()
				err := Default().Validate(id, with(f.valid, map[string]any{field: nil}))
				verr := requireValidationError(t, err, id)
				require.Equal(t, []FieldError{{Path: field, Reason: "missing required property"}}, verr.Fields)
				require.Contains(t, err.Error(), "data."+field+": missing required property")
			})
		}

		t.Run(id+"/all missing", func(t *testing.T) {
			t.Parallel()
			for _, data := range []map[string]any{nil, {}} {
				verr := requireValidationError(t, Default().Validate(id, data), id)
				var paths []string
				for _, fe := range verr.Fields {
					require.Equal(t, "missing required property", fe.Reason)
					paths = append(paths, fe.Path)
				}
				require.Equal(t, slices.Sorted(slices.Values(f.required)), paths)
			}
		})
	}
}

func TestValidateWrongType(t *testing.T) {
	t.Parallel()
	values := []struct {
		name string
		val  any
		got  string
	}{
		{"number", 42, "number"},
		{"float", 1.5, "number"},
		{"bool", true, "boolean"},
		{"array", []any{"x"}, "array"},
		{"typed slice", []string{"x"}, "array"},
		{"object", map[string]any{"x": "y"}, "object"},
		{"typed map", map[string]string{"x": "y"}, "object"},
	}
	for _, id := range fixtureIDs() {
		f := fixtures[id]
		for _, field := range append(slices.Clone(f.required), f.optional...) {
			for _, v := range values {
				t.Run(id+"/"+field+"/"+v.name, func(t *testing.T) {
					t.Parallel()
					err := Default().Validate(id, with(f.valid, map[string]any{field: v.val}))
					verr := requireValidationError(t, err, id)
					require.Equal(t, []FieldError{{Path: field, Reason: "expected string, got " + v.got}}, verr.Fields)
					require.Contains(t, err.Error(), "data."+field+": expected string, got "+v.got)
				})
			}
		}
	}

	t.Run("null", func(t *testing.T) {
		t.Parallel()
		data := map[string]any{"token": nil}
		verr := requireValidationError(t, Default().Validate("api_token", data), "api_token")
		require.Equal(t, []FieldError{{Path: "token", Reason: "expected string, got null"}}, verr.Fields)
	})
}

func TestValidateOtherFailures(t *testing.T) {
	t.Parallel()
	g := fixtures["google_oauth2_credentials"].valid
	tests := []struct {
		name   string
		id     string
		data   map[string]any
		fields []FieldError
	}{
		{
			name:   "empty string",
			id:     "basic_auth",
			data:   map[string]any{"username": "", "password": "x"},
			fields: []FieldError{{Path: "username", Reason: "must not be empty"}},
		},
		{
			name:   "empty optional",
			id:     "aws_access_key",
			data:   with(fixtures["aws_access_key"].valid, map[string]any{"region_name": ""}),
			fields: []FieldError{{Path: "region_name", Reason: "must not be empty"}},
		},
		{
			name:   "const",
			id:     "google_oauth2_credentials",
			data:   with(g, map[string]any{"type": "authorized_user"}),
			fields: []FieldError{{Path: "type", Reason: `must be "service_account"`}},
		},
		{
			name:   "email format",
			id:     "google_oauth2_credentials",
			data:   with(g, map[string]any{"client_email": "not-an-email"}),
			fields: []FieldError{{Path: "client_email", Reason: "not a valid email"}},
		},
		{
			name: "several problems sorted by path",
			id:   "google_oauth2_credentials",
			data: with(g, map[string]any{"type": nil, "project_id": 7, "client_email": "x"}),
			fields: []FieldError{
				{Path: "client_email", Reason: "not a valid email"},
				{Path: "project_id", Reason: "expected string, got number"},
				{Path: "type", Reason: "missing required property"},
			},
		},
		{
			name:   "not JSON-encodable",
			id:     "api_token",
			data:   map[string]any{"token": "x", "callback": func() {}},
			fields: []FieldError{{Path: "callback", Reason: "value is not JSON-encodable"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			verr := requireValidationError(t, Default().Validate(tt.id, tt.data), tt.id)
			require.Equal(t, tt.fields, verr.Fields)
		})
	}
}

func TestValidateUnknownSchema(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "nope", "AWS_ACCESS_KEY", "aws_access_key.json"} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			t.Parallel()
			err := Default().Validate(id, map[string]any{"token": "x"})
			var uerr *UnknownSchemaError
			require.ErrorAs(t, err, &uerr)
			require.Equal(t, id, uerr.ID)
			require.Contains(t, err.Error(), "unknown schema")
		})
	}
}

type leakyMarshaler struct{}

func (leakyMarshaler) MarshalJSON() ([]byte, error) {
	return nil, errors.New("cannot marshal " + canary)
}

type leakyStruct struct {
	Secret string
	Fn     func()
}

// TestErrorsNeverLeakValues puts a canary value into data in every failing
// shape we can think of and checks it never shows up in the error text.
func TestErrorsNeverLeakValues(t *testing.T) {
	t.Parallel()
	type failing struct {
		name string
		id   string
		data map[string]any
	}
	var cases []failing
	for _, id := range fixtureIDs() {
		f := fixtures[id]
		fields := append(slices.Clone(f.required), f.optional...)
		for _, field := range fields {
			for name, v := range map[string]any{
				"array":       []any{canary},
				"typed slice": []string{canary},
				"object":      map[string]any{"v": canary},
				"typed map":   map[string]string{"v": canary},
				"nested":      map[string]any{"a": []any{map[string]any{"b": canary}}},
				"struct":      struct{ V string }{canary},
				"unencodable": leakyStruct{Secret: canary},
				"marshaler":   leakyMarshaler{},
				"nan":         math.NaN(),
			} {
				cases = append(cases, failing{id + "/" + field + "/" + name, id, with(f.valid, map[string]any{field: v})})
			}
		}
		// Every field holds the canary while another field is missing,
		// and an additional property holds it too.
		for _, missing := range f.required {
			data := map[string]any{"extra": canary}
			for _, field := range fields {
				if field != missing {
					data[field] = canary
				}
			}
			cases = append(cases, failing{id + "/canary values, missing " + missing, id, data})
		}
	}
	g := fixtures["google_oauth2_credentials"].valid
	cases = append(cases,
		failing{"const", "google_oauth2_credentials", with(g, map[string]any{"type": canary})},
		failing{"format", "google_oauth2_credentials", with(g, map[string]any{"client_email": canary})},
		failing{"format with @", "google_oauth2_credentials", with(g, map[string]any{"client_email": canary + "@"})},
		failing{"format bad domain", "google_oauth2_credentials", with(g, map[string]any{"client_email": "a@" + canary + "..com"})},
		failing{"format too long", "google_oauth2_credentials", with(g, map[string]any{"client_email": strings.Repeat(canary, 30) + "@example.com"})},
		failing{"const and format", "google_oauth2_credentials", with(g, map[string]any{"type": canary, "client_email": canary, "private_key": nil})},
	)

	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Default().Validate(tt.id, tt.data)
			verr := requireValidationError(t, err, tt.id)
			require.NotContains(t, err.Error(), canary)
			require.NotContains(t, err.Error(), "9f8e7d")
			for _, fe := range verr.Fields {
				require.NotContains(t, fe.Path, canary)
				require.NotContains(t, fe.Reason, canary)
			}
		})
	}
}

func TestValidateConcurrent(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			id := fixtureIDs()[i%len(fixtures)]
			f := fixtures[id]
			for range 20 {
				if err := Default().Validate(id, f.valid); err != nil {
					t.Error(err)
				}
				if err := Default().Validate(id, nil); err == nil {
					t.Error("expected error for empty data")
				}
			}
		})
	}
	wg.Wait()
}

func TestValidationErrorFormat(t *testing.T) {
	t.Parallel()
	err := &ValidationError{SchemaID: "basic_auth", Fields: []FieldError{
		{Path: "password", Reason: "missing required property"},
		{Path: "", Reason: "data is not JSON-encodable"},
	}}
	require.Equal(t,
		`schemas: invalid data for schema "basic_auth": data.password: missing required property; data: data is not JSON-encodable`,
		err.Error())
	require.Equal(t, `schemas: unknown schema "x"`, (&UnknownSchemaError{ID: "x"}).Error())
}

func TestLoadRejectsBadDefinitions(t *testing.T) {
	t.Parallel()
	const good = `{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"https://example.test/s/a.json","title":"A","x-provider":"p","type":"object"}`
	tests := []struct {
		name    string
		files   fstest.MapFS
		wantErr string
	}{
		{"empty", fstest.MapFS{}, "no schema definitions"},
		{"invalid JSON", fstest.MapFS{"a.json": {Data: []byte(`{`)}}, "a.json"},
		{"not an object", fstest.MapFS{"a.json": {Data: []byte(`true`)}}, "JSON object"},
		{"missing provider", fstest.MapFS{"a.json": {Data: []byte(strings.Replace(good, `"x-provider":"p",`, "", 1))}}, "x-provider"},
		{"missing title", fstest.MapFS{"a.json": {Data: []byte(strings.Replace(good, `"title":"A",`, "", 1))}}, "title"},
		{"missing $id", fstest.MapFS{"a.json": {Data: []byte(strings.Replace(good, `"$id":"https://example.test/s/a.json",`, "", 1))}}, "$id"},
		{"$id mismatch", fstest.MapFS{"b.json": {Data: []byte(good)}}, "does not end in"},
		{"invalid schema", fstest.MapFS{"a.json": {Data: []byte(strings.Replace(good, `"type":"object"`, `"type":"nope"`, 1))}}, "a.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(tt.files)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		r, err := load(fstest.MapFS{"a.json": {Data: []byte(good)}})
		require.NoError(t, err)
		require.Equal(t, []Schema{{ID: "a", Provider: "p", Name: "A"}}, r.List())
	})
}
