package localpg_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/localpg"
)

// TestLocalSocketOnly: the private cluster, which trusts its clients, opens
// no TCP port and admits local socket connections only, through a socket
// directory only its owner can enter; a data directory too long for a socket
// path still works.
func TestLocalSocketOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), strings.Repeat("long-directory-name-", 6))} {
		c, err := localpg.Start(ctx, localpg.Options{Dir: dir, Install: true})
		require.NoError(t, err)
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		require.NoError(t, err)
		var listen string
		require.NoError(t, conn.QueryRow(ctx, `SHOW listen_addresses`).Scan(&listen))
		require.Empty(t, listen, "no TCP listener")
		rows, err := conn.Query(ctx, `SELECT type FROM pg_hba_file_rules`)
		require.NoError(t, err)
		types, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, []string{"local"}, types, "pg_hba admits local sockets only")
		require.NoError(t, conn.Close(ctx))
		fi, err := os.Stat(c.SocketDir())
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
		require.Less(t, len(c.SocketDir()), 100)

		require.NoError(t, c.Stop())
	}
}
