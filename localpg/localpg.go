// Package localpg runs a private PostgreSQL cluster owned by this process: the
// service's embedded default when no SECRETLOG_DATABASE_URL is given, and the
// database behind every test. It finds (or installs) the server binaries,
// initialises a data directory, starts the postmaster and stops it again.
//
// The cluster trusts its clients, so it accepts no network connections at
// all: it listens only on a Unix socket in a directory only the cluster's
// owner can enter (mode 0700), and its pg_hba.conf allows local socket
// connections only.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure a cluster.
type Options struct {
	// Dir holds the cluster's data ("pgdata") and its server log.
	Dir string
	// Durable keeps fsync on. Tests turn it off for speed; the service keeps it.
	Durable bool
	// Install allows apt-get to install PostgreSQL when no server binaries exist.
	Install bool
	// Log receives progress lines ("initialising", "installing"); nil discards them.
	Log io.Writer
}

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	dir  string
	port int
	// socketDir holds the server's Unix socket; tempSocketDir is set when it
	// is a temporary directory (Dir's path was too long for a socket).
	socketDir     string
	tempSocketDir bool
	cmd           *exec.Cmd
	done          chan error
}

// socketPort is the port number in the socket's name (.s.PGSQL.5432); no TCP
// port is opened, and the socket directory is the cluster's own.
const socketPort = 5432

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path, 108
// bytes with its terminating NUL), with some room.
const maxSocketPath = 100

// hbaConf lets local socket connections in and nothing else.
const hbaConf = `# Written by localpg on every start: Unix socket connections only (the socket
# directory is private to the cluster's owner); no TCP connections at all.
local   all   all   trust
`

// Start initialises Dir if it holds no cluster yet and starts the server.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	bin, err := findBinaries()
	if errors.Is(err, errNoBinaries) && opts.Install {
		fmt.Fprintln(logw, "PostgreSQL server binaries not found: installing with apt-get")
		if err = aptInstall(ctx, logw); err == nil {
			bin, err = findBinaries()
		}
	}
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	pgdata := filepath.Join(dir, "pgdata")
	if cred != nil {
		// The server refuses to run as root: it runs as "postgres" and must own its files.
		if err := chownTree(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
		if err := traversable(dir, logw); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); err != nil {
		fmt.Fprintf(logw, "initialising a private PostgreSQL cluster in %s\n", pgdata)
		args := []string{"-D", pgdata, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"}
		if !opts.Durable {
			args = append(args, "--no-sync")
		}
		init := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
		init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := init.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %w: %s", err, out)
		}
	}
	// Whatever an older version (or initdb) wrote: local socket connections only.
	hba := filepath.Join(pgdata, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte(hbaConf), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(hba, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	socketDir, tempSocketDir := dir, false
	if len(socketDir)+len("/.s.PGSQL.5432") > maxSocketPath {
		if socketDir, err = os.MkdirTemp("", "slpg-"); err != nil {
			return nil, err
		}
		tempSocketDir = true
		if cred != nil {
			if err := os.Chown(socketDir, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	if err := os.Chmod(socketDir, 0o700); err != nil {
		return nil, err
	}
	port := socketPort
	logFile, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		_ = logFile.Chown(int(cred.Uid), int(cred.Gid))
	}
	settings := []string{
		"listen_addresses=", // no TCP
		"port=" + strconv.Itoa(port),
		"unix_socket_directories=" + socketDir,
		"unix_socket_permissions=0700",
		"max_connections=200",
		"shared_buffers=256MB",
	}
	if !opts.Durable {
		settings = append(settings, "fsync=off", "synchronous_commit=off", "full_page_writes=off")
	}
	args := []string{"-D", pgdata}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig stops the server when this process dies, so no orphan cluster outlives a killed test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c := &Cluster{dir: dir, port: port, socketDir: socketDir, tempSocketDir: tempSocketDir, cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); logFile.Close() }()
	if err := c.waitReady(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// URL is a connection string for database name on this cluster: its Unix
// socket, as user postgres. It always has a query part, so more parameters
// can be appended with "&".
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable",
		url.PathEscape(database), url.QueryEscape(c.socketDir), c.port)
}

// Port is the port number of the server's socket (no TCP port is open).
func (c *Cluster) Port() int { return c.port }

// SocketDir is the directory holding the server's Unix socket.
func (c *Cluster) SocketDir() string { return c.socketDir }

// CreateDatabase creates a new, empty database.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

// Stop shuts the server down (fast mode) and waits for it.
func (c *Cluster) Stop() error {
	if c.cmd.Process == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	defer func() {
		if c.tempSocketDir {
			_ = os.RemoveAll(c.socketDir)
		}
	}()
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		return errors.New("postgres did not stop within 30s; killed")
	}
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case err := <-c.done:
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			return fmt.Errorf("postgres exited: %v: %s", err, tail(string(log), 2000))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after 60s: %w", err)
		}
	}
}

var errNoBinaries = errors.New("PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and PATH)")

// findBinaries returns the newest /usr/lib/postgresql/N/bin, else the directory of initdb on PATH.
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errNoBinaries
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func aptInstall(ctx context.Context, logw io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w; install it with: sudo apt-get install -y postgresql", errNoBinaries)
	}
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "postgresql"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = logw, logw
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}

// serverCredential is nil when we may run the server as ourselves, or the
// "postgres" account when we are root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a 'postgres' system user to own the cluster: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// traversable lets the server account reach dir: each ancestor needs o+x
// (search, not listing). Only directories without it are changed, and each
// change is reported.
func traversable(dir string, logw io.Writer) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			fmt.Fprintf(logw, "allowing the postgres account to traverse %s (chmod o+x)\n", p)
			if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
