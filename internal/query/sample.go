package query

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Dialects of the SQL the engine writes around a statement to sample it.
const (
	DialectDuckDB    = "duckdb"
	DialectSnowflake = "snowflake"
)

const (
	// MinSampleRate is the lowest rate the engine samples at (0.1%).
	// A result still over the cap at this rate is cut at the cap and
	// marked Truncated.
	MinSampleRate = 0.001
	// sampleHeadroom aims a sample at 90% of the cap, so that the
	// variance of a Bernoulli sample rarely pushes it over.
	sampleHeadroom = 0.9
	// MaxSampleRuns bounds the warehouse runs spent on sampling one
	// ticket; each aims lower than the last when the sample was still
	// over the cap.
	MaxSampleRuns = 3
)

// nextRate is the rate that should bring a result of size bytes, measured
// at rate, to sampleHeadroom of limit. It only goes down (a result under
// the limit at rate was over a row bound: it takes sampleHeadroom of rate),
// never below MinSampleRate, and is rounded to the precision written into
// SQL, so the rate a ticket reports is the one that ran.
func nextRate(rate float64, size, limit int64) float64 {
	r := rate
	if size > 0 {
		r = rate * sampleHeadroom * float64(limit) / float64(size)
	}
	if r >= rate {
		r = rate * sampleHeadroom
	}
	return quantizeRate(r)
}

// quantizeRate rounds r down to a whole number of millionths (what
// percent() writes: four decimals of a percent), at least MinSampleRate.
func quantizeRate(r float64) float64 {
	return max(math.Floor(r*1e6+1e-6)/1e6, MinSampleRate) // +1e-6: 0.09*1e6 is 89999.99…
}

// sampleSeed is a seed derived from the query hash: the same question is
// sampled with the same seed. (DuckDB repeats a seeded sample exactly only
// with one thread; the seed makes it repeatable where the engine allows.)
func sampleSeed(hash string) uint32 {
	sum := sha256.Sum256([]byte(hash))
	return binary.BigEndian.Uint32(sum[:4]) & 0x7fffffff
}

// percent formats rate (0..1) as a percentage with a fixed format, so the
// number written into SQL is always one the engine computed, never input.
func percent(rate float64) string {
	return strconv.FormatFloat(rate*100, 'f', 4, 64)
}

// SampleSQL wraps the single statement q so that it returns a Bernoulli
// sample of its rows at rate (MinSampleRate <= rate < 1), seeded where the
// warehouse allows it:
//
//	duckdb:    SELECT * FROM (q) AS sampled USING SAMPLE p PERCENT (bernoulli, seed)
//	snowflake: SELECT * FROM (q) AS sampled SAMPLE BERNOULLI (p)
//
// Snowflake takes SEED (REPEATABLE) only with SYSTEM/BLOCK sampling of a
// table: "sampling with a seed is not supported on views or subqueries"
// (SAMPLE / TABLESAMPLE in its SQL reference). A seed there would fail
// every sampled run; its sample is unseeded instead.
//
// q keeps its bound parameters; the wrapper adds none. q comes on lines of
// its own so that a trailing line comment cannot swallow the parenthesis.
func SampleSQL(dialect, q string, rate float64, seed uint32) (string, error) {
	if !(rate >= MinSampleRate && rate < 1) {
		return "", fmt.Errorf("sample rate %g out of range [%g, 1)", rate, MinSampleRate)
	}
	q = strings.TrimRight(q, " \t\r\n;")
	switch dialect {
	case "", DialectDuckDB:
		return fmt.Sprintf("SELECT * FROM (\n%s\n) AS sampled USING SAMPLE %s PERCENT (bernoulli, %d)", q, percent(rate), seed), nil
	case DialectSnowflake:
		return fmt.Sprintf("SELECT * FROM (\n%s\n) AS sampled SAMPLE BERNOULLI (%s)", q, percent(rate)), nil
	}
	return "", fmt.Errorf("unknown SQL dialect %q (want %s or %s)", dialect, DialectDuckDB, DialectSnowflake)
}

// bernoulli keeps each row with probability rate, in order, with a PRNG
// seeded by seed: the same rows for the same seed and rate.
func bernoulli(rows [][]any, rate float64, seed uint32) [][]any {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x61637469766974))
	out := make([][]any, 0, int(float64(len(rows))*rate*1.1)+1)
	for _, r := range rows {
		if rng.Float64() < rate {
			out = append(out, r)
		}
	}
	return out
}
