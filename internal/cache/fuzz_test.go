package cache

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzKeys: distinct (customer, scope) pairs never share a key or a digest,
// keys have the fixed shape, and no key names its customer or scope.
func FuzzKeys(f *testing.F) {
	f.Add("a:b", "x", "a", "b:x")
	f.Add("a", ":x", "a:", "x")
	f.Add("*", "", "", "*")
	f.Add("ünï", "cöde", "ünï", "cöde ")
	f.Add("a\x00", "b", "a", "\x00b")
	f.Fuzz(func(t *testing.T, c1, s1, c2, s2 string) {
		const ns = "ns"
		k1, k2 := deriveKeys(ns, c1, s1), deriveKeys(ns, c2, s2)
		same := c1 == c2 && s1 == s2
		if (k1.data == k2.data) != same || (k1.digest == k2.digest) != same {
			t.Fatalf("(%q,%q) and (%q,%q): keys %q %q", c1, s1, c2, s2, k1.data, k2.data)
		}
		if (k1.gen == k2.gen) != (c1 == c2) || (k1.cust == k2.cust) != (c1 == c2) {
			t.Fatalf("customers %q and %q: generation keys %q %q", c1, c2, k1.gen, k2.gen)
		}
		for _, k := range []l2Keys{k1, k2} {
			if len(k.data) != len(ns)+5+custHexLen+1+scopeHexLen || !strings.HasPrefix(k.data, ns+":ctx:") {
				t.Fatalf("key %q", k.data)
			}
			if !strings.HasPrefix(k.data, ns+":ctx:"+k.cust.String()+":") || k.gen != ns+":gen:"+k.cust.String() {
				t.Fatalf("key %q and generation %q disagree", k.data, k.gen)
			}
			for _, c := range k.data[len(ns)+5:] {
				if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == ':') {
					t.Fatalf("key %q has %q", k.data, c)
				}
			}
		}
		// The pub/sub payload round-trips and names only the hash.
		p := encodeInvalidation(k1.cust, "0123456789abcdef")
		h, origin, ok := decodeInvalidation(p)
		if !ok || h != k1.cust || origin != "0123456789abcdef" {
			t.Fatalf("payload %q does not round-trip", p)
		}
		// A value written for one pair is accepted for it only.
		e := Entry{Value: []byte(c1 + s1), Version: int64(len(c2)) - 7, AsOf: time.Unix(int64(len(s2)), 5)}
		b, err := encodeBlob(k1.digest, c2, e)
		if err != nil {
			t.Fatal(err)
		}
		got, gen, match, err := decodeBlob(b, k1.digest)
		if err != nil || !match || gen != c2 || !bytes.Equal(got.Value, e.Value) || got.Version != e.Version || !got.AsOf.Equal(e.AsOf) {
			t.Fatalf("blob round trip: %+v %q %v %v", got, gen, match, err)
		}
		if _, _, match, _ := decodeBlob(b, k2.digest); match != same {
			t.Fatalf("blob of (%q,%q) matches (%q,%q): %v", c1, s1, c2, s2, match)
		}
	})
}

// FuzzDecodeBlob: whatever Redis holds, decoding never panics, and what
// decodes re-encodes to the same bytes.
func FuzzDecodeBlob(f *testing.F) {
	d := pairDigest("c", "s")
	good, _ := encodeBlob(d, "gen", Entry{Value: []byte("v"), Version: 3, AsOf: time.Unix(1700000000, 0).UTC()})
	zero, _ := encodeBlob(d, "", Entry{})
	f.Add(good)
	f.Add(zero)
	f.Add([]byte{})
	f.Add([]byte{blobFormat})
	f.Add(append([]byte{blobFormat}, make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, gen, match, err := decodeBlob(b, d)
		if err != nil {
			return
		}
		if !match {
			return
		}
		again, err := encodeBlob(d, gen, e)
		if err != nil {
			return // e.g. a time whose zone offset MarshalBinary refuses
		}
		e2, gen2, match2, err := decodeBlob(again, d)
		if err != nil || !match2 || gen2 != gen || !bytes.Equal(e2.Value, e.Value) || e2.Version != e.Version || !e2.AsOf.Equal(e.AsOf) {
			t.Fatalf("re-encoded value decodes differently: %+v vs %+v", e2, e)
		}
	})
}
