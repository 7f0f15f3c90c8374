// Package redistest runs a real redis-server for tests: on a free loopback
// port, in the test's temporary directory, without persistence, killable
// (SIGKILL, like a crash) and restartable on the same port.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
	exit chan struct{}
}

// Start starts a redis-server for the test; it is killed at cleanup.
// Without redis-server the test is skipped, except in CI (.ci/run installs
// it), where that is a failure.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed (.ci/run installs it)")
		}
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Server{t: t, port: l.Addr().(*net.TCPAddr).Port, dir: t.TempDir()}
	l.Close()
	r.Restart()
	t.Cleanup(r.Kill)
	return r
}

// Addr is host:port.
func (r *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// URL is the redis:// URL of database 0.
func (r *Server) URL() string { return "redis://" + r.Addr() + "/0" }

// Restart kills the server if it runs and starts it again on the same
// port, empty, waiting until it answers PING.
func (r *Server) Restart() {
	r.t.Helper()
	r.Kill()
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", "", "--loglevel", "warning", "--daemonize", "no")
	cmd.Dir = r.dir
	log, err := os.Create(fmt.Sprintf("%s/redis-%d.log", r.dir, time.Now().UnixNano()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	r.exit = make(chan struct{})
	go func(exit chan struct{}) { _ = cmd.Wait(); close(exit) }(r.exit)
	deadline := time.Now().Add(10 * time.Second)
	for !r.ping() {
		select {
		case <-r.exit:
			b, _ := os.ReadFile(log.Name())
			r.t.Fatalf("redis-server exited at start: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			r.Kill()
			r.t.Fatal("redis-server did not answer PING within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *Server) ping() bool {
	c, err := net.DialTimeout("tcp", r.Addr(), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// Kill ends the server at once (SIGKILL: no shutdown, like a crash) and
// waits for it to be gone; a server not running is left as it is.
func (r *Server) Kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exit
	r.cmd = nil
}
