package events

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// withUpcasters installs upcasters for one test. It mutates package state, so
// tests using it never call t.Parallel (and sequential tests finish before
// any parallel one starts).
func withUpcasters(t *testing.T, ups map[string]Upcaster) {
	saved := upcasters
	upcasters = ups
	t.Cleanup(func() { upcasters = saved })
}

func TestDecodeUpcastsInAChain(t *testing.T) {
	withUpcasters(t, map[string]Upcaster{
		// v0 called the name "title"; v0b only ever existed briefly.
		"SecretUpdated.v0": func(data []byte) (string, []byte, error) {
			return "SecretUpdated.v0b", []byte(`{"name":"from-v0"}`), nil
		},
		"SecretUpdated.v0b": func(data []byte) (string, []byte, error) {
			return SecretUpdatedV1, data, nil
		},
	})
	got, err := Decode("SecretUpdated.v0", []byte(`{"title":"ignored"}`))
	require.NoError(t, err)
	name := "from-v0"
	require.Equal(t, &SecretUpdated{Name: &name}, got)

	// Current versions are not touched.
	got, err = Decode(SecretUpdatedV1, []byte(`{"name":"now"}`))
	require.NoError(t, err)
	require.Equal(t, "now", *got.(*SecretUpdated).Name)
}

func TestDecodeUpcasterErrors(t *testing.T) {
	boom := errors.New("boom")
	withUpcasters(t, map[string]Upcaster{
		"Loop.v1":   func(data []byte) (string, []byte, error) { return "Loop.v2", data, nil },
		"Loop.v2":   func(data []byte) (string, []byte, error) { return "Loop.v1", data, nil },
		"Broken.v1": func(data []byte) (string, []byte, error) { return "", nil, boom },
		"Orphan.v1": func(data []byte) (string, []byte, error) { return "Orphan.v2", data, nil },
	})
	_, err := Decode("Loop.v1", []byte(`{}`))
	require.ErrorContains(t, err, "upcaster loop")
	_, err = Decode("Broken.v1", []byte(`{}`))
	require.ErrorIs(t, err, boom)
	_, err = Decode("Orphan.v1", []byte(`{}`))
	require.ErrorContains(t, err, `unknown event type "Orphan.v2"`)
}
