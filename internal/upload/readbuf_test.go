package upload

import "testing"

func TestFitReadBuf(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		cap, need int
		same      bool
		wantCap   int // when not same
	}{
		"nil, small read":          {0, 100, false, minReadBuf},
		"small buffer fits":        {minReadBuf, 1, true, 0},
		"grows with headroom":      {minReadBuf, 400_000, false, 500_000},
		"large enough, not far":    {1 << 20, 300_000, true, 0},
		"far too large: shrinks":   {8 << 20, 100_000, false, 125_000},
		"far too large, tiny read": {8 << 20, 10, false, minReadBuf},
		"exactly 4x stays":         {1 << 20, 1 << 18, true, 0},
	}
	for name, c := range cases {
		buf := make([]byte, 0, c.cap)
		got := fitReadBuf(buf, c.need)
		if cap(got) < c.need {
			t.Errorf("%s: cap %d below need %d", name, cap(got), c.need)
		}
		same := c.cap > 0 && cap(got) == c.cap && &got[:1][0] == &buf[:1][0]
		if same != c.same {
			t.Errorf("%s: kept the buffer = %v, want %v (cap %d)", name, same, c.same, cap(got))
		}
		if !c.same && cap(got) != c.wantCap {
			t.Errorf("%s: cap %d, want %d", name, cap(got), c.wantCap)
		}
	}
}

// TestReadBuffersFollowTheBacklog: a drain of a large spool grows the read
// buffers, and a later small read shrinks them again, so a backlog does not
// pin BatchMaxBytes per buffer for the life of the process.
func TestReadBuffersFollowTheBacklog(t *testing.T) {
	t.Parallel()
	u, b := setup(t)
	writeN(t, b.dir, "big", 5000)
	drain(t, u)
	grown := max(cap(u.bufs[0]), cap(u.bufs[1]))
	if grown < 500_000 {
		t.Fatalf("read buffers after a 5,000-event drain: %d and %d bytes", cap(u.bufs[0]), cap(u.bufs[1]))
	}
	for i := range 4 {
		writeN(t, b.dir, "small"+string(rune('a'+i)), 3)
		drain(t, u)
	}
	if c := max(cap(u.bufs[0]), cap(u.bufs[1])); c > minReadBuf {
		t.Fatalf("read buffers after small reads: %d and %d bytes (were up to %d)", cap(u.bufs[0]), cap(u.bufs[1]), grown)
	}
	if got := b.count(t, "claude_stream"); got != 5012 {
		t.Fatalf("rows %d, want 5012", got)
	}
}
