package events_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
)

func TestCursorBefore(t *testing.T) {
	t.Parallel()
	const maxU = ^uint64(0)
	cases := []struct {
		name string
		c, o events.Cursor
		want bool
	}{
		{"zero is not before zero", events.Cursor{}, events.Cursor{}, false},
		{"zero before anything", events.Cursor{}, events.Cursor{Commit: 1}, true},
		{"zero before a position", events.Cursor{}, events.Cursor{Position: 1}, true},
		{"equal is not before", events.Cursor{Commit: 7, Position: 3}, events.Cursor{Commit: 7, Position: 3}, false},
		{"lower position, same commit", events.Cursor{Commit: 7, Position: 3}, events.Cursor{Commit: 7, Position: 4}, true},
		{"higher position, same commit", events.Cursor{Commit: 7, Position: 4}, events.Cursor{Commit: 7, Position: 3}, false},
		// Commit order wins over position: a late commit with a low position comes later.
		{"lower commit, higher position", events.Cursor{Commit: 7, Position: 100}, events.Cursor{Commit: 8, Position: 1}, true},
		{"higher commit, lower position", events.Cursor{Commit: 8, Position: 1}, events.Cursor{Commit: 7, Position: 100}, false},
		{"commits compare unsigned", events.Cursor{Commit: 1 << 63}, events.Cursor{Commit: maxU}, true},
		{"max commit is not before lower", events.Cursor{Commit: maxU}, events.Cursor{Commit: 1 << 63}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, c.want, c.c.Before(c.o))
			if c.c != c.o {
				require.Equal(t, !c.want, c.o.Before(c.c), "exactly one of two different cursors comes first")
			}
		})
	}
}
