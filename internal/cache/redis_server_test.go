package cache

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a real redis-server on a free loopback port, in its own
// temporary directory, without persistence.
type redisServer struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
	exit chan struct{}
}

// startRedis starts a redis-server for the test; it is killed at cleanup.
// Without redis-server the test is skipped, except in CI (.ci/run installs
// it), where that is a failure.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed (.ci/run installs it)")
		}
		t.Skip("redis-server is not installed")
	}
	r := &redisServer{t: t, port: freePort(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) url() string { return "redis://" + r.addr() + "/0" }

// start runs redis-server on r.port and waits until it answers PING.
func (r *redisServer) start() {
	r.t.Helper()
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
	for {
		if r.ping() {
			return
		}
		select {
		case <-r.exit:
			b, _ := os.ReadFile(log.Name())
			r.t.Fatalf("redis-server exited at start: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			r.kill()
			r.t.Fatal("redis-server did not answer PING within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *redisServer) ping() bool {
	c, err := net.DialTimeout("tcp", r.addr(), 200*time.Millisecond)
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

// kill ends the server at once (SIGKILL: no shutdown, like a crash) and
// waits for it to be gone.
func (r *redisServer) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exit
	r.cmd = nil
}

// restart starts the server again on the same port.
func (r *redisServer) restart() {
	r.t.Helper()
	r.kill()
	r.start()
}

// client returns a plain client for inspecting the server.
func (r *redisServer) client() *redis.Client {
	r.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.addr(), DisableIdentity: true})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

// keys lists every key on the server.
func (r *redisServer) keys() []string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ks, err := r.client().Keys(ctx, "*").Result()
	if err != nil {
		r.t.Fatal(err)
	}
	return ks
}
