package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildBinary compiles cmd/secretlog into dir: the server under test runs as
// its own process, exactly as deployed, so its memory can be read from /proc.
func buildBinary(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "secretlog")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/secretlog/secretlog/cmd/secretlog")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/secretlog (run the harness from the repository): %w: %s", err, out)
	}
	return bin, nil
}

// serviceEnv is the environment of every secretlog process the harness runs:
// the caller's SECRETLOG_* settings are dropped so that only ours apply.
func serviceEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECRETLOG_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serverProc is a running "secretlog serve".
type serverProc struct {
	cmd   *exec.Cmd
	pid   int
	base  string // http://127.0.0.1:port
	pprof string // host:port of net/http/pprof, "" when off
	done  chan error
	log   string
}

func startServer(ctx context.Context, bin string, env []string, logPath string, withPprof bool) (*serverProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env = append(append([]string{}, env...), "SECRETLOG_LISTEN="+addr)
	var pprofAddr string
	if withPprof {
		if pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		env = append(env, "SECRETLOG_PPROF="+pprofAddr)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server must not outlive the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &serverProc{cmd: cmd, pid: cmd.Process.Pid, base: "http://" + addr, pprof: pprofAddr, done: make(chan error, 1), log: logPath}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("secretlog serve exited: %v; log:\n%s", err, tailFile(logPath, 3000))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("secretlog serve not ready after 2m; log:\n%s", tailFile(logPath, 3000))
		}
	}
}

// stop asks the server to drain and exit (SIGTERM), then kills it after 20s.
func (s *serverProc) stop() {
	if s == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// procStatusKB reads a "Vm...:  N kB" line of /proc/<pid>/status.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux >= 4.0),
// so that each scenario reports its own peak.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is the part of /proc/<pid>/stat the harness uses.
type procStat struct {
	ppid int
	// cpu is user+system time; children adds that of reaped children.
	cpu, children float64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// Fields after the command name (which may hold spaces) start at state (field 3).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, errors.New("malformed /proc/pid/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, errors.New("short /proc/pid/stat")
	}
	n := func(i int) float64 { v, _ := strconv.ParseFloat(f[i], 64); return v }
	ppid, _ := strconv.Atoi(f[1])
	return procStat{ppid: ppid, cpu: (n(11) + n(12)) / clockTicks, children: (n(13) + n(14)) / clockTicks}, nil
}

// procCPUSeconds is user+system CPU time of pid.
func procCPUSeconds(pid int) (float64, error) {
	st, err := readProcStat(pid)
	return st.cpu, err
}

// clusterCPUSeconds is the CPU time of a PostgreSQL cluster: the postmaster,
// its live backends and auxiliary processes, and the ones it has reaped.
func clusterCPUSeconds(postmaster int) float64 {
	if postmaster <= 0 {
		return 0
	}
	pm, err := readProcStat(postmaster)
	if err != nil {
		return 0
	}
	total := pm.cpu + pm.children
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster {
			continue
		}
		if st, err := readProcStat(pid); err == nil && st.ppid == postmaster {
			total += st.cpu
		}
	}
	return total
}

// postmasterPID reads the first line of pgdata/postmaster.pid.
func postmasterPID(pgdata string) int {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// machineBusySeconds is the CPU time all cores spent not idle, from /proc/stat.
func machineBusySeconds() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy float64
	// user nice system idle iowait irq softirq steal: idle and iowait are not busy.
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / clockTicks, nil
}

func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// cpuSnapshot is the CPU counters at one instant.
type cpuSnapshot struct {
	at                              time.Time
	server, postgres, self, machine float64
}

func takeCPU(server, postmaster int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), self: selfCPUSeconds(), postgres: clusterCPUSeconds(postmaster)}
	if server > 0 {
		s.server, _ = procCPUSeconds(server)
	}
	s.machine, _ = machineBusySeconds()
	return s
}

// CPUShare is how many cores each party kept busy on average during a
// scenario. Other is everything else the machine did meanwhile (kernel
// interrupt work, other programs): a run where it is large was disturbed.
type CPUShare struct {
	Server   float64 `json:"server_cores"`
	Postgres float64 `json:"postgres_cores"`
	Load     float64 `json:"load_generator_cores"`
	Other    float64 `json:"other_cores"`
	Total    float64 `json:"total_cores"`
}

func cpuBetween(a, b cpuSnapshot) CPUShare {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return CPUShare{}
	}
	c := CPUShare{
		Server:   (b.server - a.server) / secs,
		Postgres: (b.postgres - a.postgres) / secs,
		Load:     (b.self - a.self) / secs,
		Total:    (b.machine - a.machine) / secs,
	}
	c.Other = max(0, c.Total-c.Server-c.Postgres-c.Load)
	return c
}
