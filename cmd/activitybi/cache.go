package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/fsutil"
)

// newCache opens the memory cache: in-process, plus Redis when
// cache.redis_url is set. reg may be nil (an edge has no /metrics: it
// reports its cache's counters to the core). l1TTL 0 is the default; the
// hidden --cache-l1-ttl flag sets it, to measure the tiers behind L1
// (bench/memory.md) and to test them. core is true for the core's cache
// only.
func (a *app) newCache(reg prometheus.Registerer, l1TTL time.Duration, core bool) (*cache.Cache, error) {
	if a.cfg.Cache.RedisURL != "" {
		// go-redis logs connection failures through one process-wide
		// logger; send them to ours (stderr), never stdout.
		redis.SetLogger(cache.RedisLogger{L: a.log})
	}
	// The core starts a new epoch: what
	// Redis holds may predate a crash of the core before it, or a Redis
	// restored from a snapshot. Edges must not, or every new client
	// window would empty the shared cache.
	ns := a.cfg.Cache.Namespace
	if ns == "" && a.cfg.Cache.RedisURL != "" {
		var err error
		if ns, err = installationNamespace(a.cfg.DataDir); err != nil {
			return nil, fmt.Errorf("cache.namespace: %w", err)
		}
	}
	c, err := cache.New(cache.Options{RedisURL: a.cfg.Cache.RedisURL, Namespace: ns, Logger: a.log,
		Registerer: reg, L1TTL: l1TTL, NewEpoch: core})
	if err != nil {
		return nil, fmt.Errorf("cache.namespace or cache.redis_url: %w", err)
	}
	return c, nil
}

// installationIDFile holds a data directory's random installation id.
const installationIDFile = "installation.id"

// installationNamespace is the default Redis namespace of the installation
// whose data directory is dataDir: "activitybi-" and a random id made once
// and kept in <data>/installation.id. An edge and the core it talks to
// share the data directory, so they agree (however they spell its path);
// two installations sharing a Redis differ, even at the same path on two
// machines. Cores that serve one warehouse from several machines
// (Snowflake) set cache.namespace to one value.
func installationNamespace(dataDir string) (string, error) {
	path := filepath.Join(dataDir, installationIDFile)
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil {
			id := strings.TrimSpace(string(b))
			if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
				return "", fmt.Errorf("%s holds %q, not a 16-hex-digit installation id; remove it to make a new one", path, id)
			}
			return "activitybi-" + id, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return "", err
		}
		var raw [8]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		// O_EXCL: of several processes starting at once, one writes it
		// and the others read what it wrote (written atomically, so a
		// reader never sees half of it).
		if err := fsutil.WriteFileNew(path, []byte(hex.EncodeToString(raw[:])+"\n"), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: cannot be read after it was made", path)
}
