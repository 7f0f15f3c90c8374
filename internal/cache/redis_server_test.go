package cache

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/activitybi/activitybi/internal/cache/redistest"
)

// redisServer is a real redis-server for the test (redistest), with
// helpers to look inside it.
type redisServer struct {
	*redistest.Server
	t testing.TB
}

// startRedis starts a redis-server for the test; see redistest.Start.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	return &redisServer{Server: redistest.Start(t), t: t}
}

// client returns a plain client for inspecting the server.
func (r *redisServer) client() *redis.Client {
	r.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DisableIdentity: true})
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
