package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Lengths of the hex hashes in Redis keys: 128 bits name a customer, 64 bits
// a scope within it. Collisions are harmless for isolation (values carry the
// full pair digest, see pairDigest); they only cost a miss.
const (
	custHexLen  = 32
	scopeHexLen = 16
)

// custHash names a customer in keys, channels and the generation registry:
// the first 128 bits of SHA-256 of the customer string.
type custHash [custHexLen / 2]byte

func hashCustomer(customer string) custHash {
	sum := sha256.Sum256([]byte(customer))
	var h custHash
	copy(h[:], sum[:])
	return h
}

func (h custHash) String() string { return hex.EncodeToString(h[:]) }

// parseCustHash reads the hex form of a custHash (lower case only, as
// String writes it).
func parseCustHash(s string) (custHash, bool) {
	var h custHash
	if len(s) != custHexLen {
		return h, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return h, false
		}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, false
	}
	return h, true
}

func hashScope(scope string) string {
	sum := sha256.Sum256([]byte(scope))
	return hex.EncodeToString(sum[:scopeHexLen/2])
}

// l2Keys are the Redis names of one (customer, scope).
type l2Keys struct {
	cust   custHash
	data   string   // <ns>:ctx:<cust>:<scope>
	gen    string   // <ns>:gen:<cust>
	digest [32]byte // pairDigest(customer, scope)
}

func deriveKeys(ns, customer, scope string) l2Keys {
	h := hashCustomer(customer)
	hc := h.String()
	return l2Keys{
		cust:   h,
		data:   ns + ":ctx:" + hc + ":" + hashScope(scope),
		gen:    genKey(ns, h),
		digest: pairDigest(customer, scope),
	}
}

func genKey(ns string, h custHash) string { return ns + ":gen:" + h.String() }

func epochKey(ns string) string { return ns + ":epoch" }

func channelName(ns string) string { return ns + ":inv" }

// pairDigestDomain separates this digest from any other SHA-256 of the same
// strings.
const pairDigestDomain = "activitybi/cache/pair/v1\x00"

// pairDigest is the full SHA-256 of the length-prefixed pair: injective in
// (customer, scope), unlike any concatenation.
func pairDigest(customer, scope string) [32]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte(pairDigestDomain))
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(customer)))])
	h.Write([]byte(customer))
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(scope)))])
	h.Write([]byte(scope))
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// The L2 value format, version 1:
//
//	byte      format (1)
//	[32]byte  pairDigest(customer, scope)
//	uvarint   len(tag), tag bytes   (epoch "/" generation when written;
//	                                 older binaries wrote the generation
//	                                 alone, which no tag equals: a miss)
//	varint    Entry.Version
//	uvarint   len(asOf), asOf       (time.Time.MarshalBinary)
//	rest      Entry.Value
const blobFormat = 1

// maxL2Value is the largest Entry.Value written to Redis; a context is a few
// tens of KB, and a runaway one must not fill Redis.
const maxL2Value = 8 << 20

// errBlob marks an L2 value that cannot be decoded.
var errBlob = errors.New("malformed cache value")

func encodeBlob(digest [32]byte, gen string, e Entry) ([]byte, error) {
	asOf, err := e.AsOf.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode as_of: %w", err)
	}
	b := make([]byte, 0, 1+32+3*binary.MaxVarintLen64+len(gen)+len(asOf)+len(e.Value))
	b = append(b, blobFormat)
	b = append(b, digest[:]...)
	b = binary.AppendUvarint(b, uint64(len(gen)))
	b = append(b, gen...)
	b = binary.AppendVarint(b, e.Version)
	b = binary.AppendUvarint(b, uint64(len(asOf)))
	b = append(b, asOf...)
	b = append(b, e.Value...)
	return b, nil
}

// decodeBlob returns the entry and tag (epoch and generation) in b, and
// whether b was written for the pair whose digest is given (false: a
// different pair whose key hashes collided, never to be served).
func decodeBlob(b []byte, digest [32]byte) (e Entry, gen string, match bool, err error) {
	if len(b) < 1+32 || b[0] != blobFormat {
		return Entry{}, "", false, errBlob
	}
	match = [32]byte(b[1:33]) == digest
	b = b[33:]
	g, b, ok := lenPrefixed(b)
	if !ok {
		return Entry{}, "", false, errBlob
	}
	v, n := binary.Varint(b)
	if n <= 0 {
		return Entry{}, "", false, errBlob
	}
	b = b[n:]
	asOf, b, ok := lenPrefixed(b)
	if !ok {
		return Entry{}, "", false, errBlob
	}
	if err := e.AsOf.UnmarshalBinary(asOf); err != nil {
		return Entry{}, "", false, errBlob
	}
	e.Version = v
	e.Value = b
	return e, string(g), match, nil
}

func lenPrefixed(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// The pub/sub invalidation payload: "<custHash hex> <origin hex>". The origin is the
// publishing Cache's random id, so that it can skip its own messages.
const originHexLen = 16

func encodeInvalidation(h custHash, origin string) string { return h.String() + " " + origin }

// The flush payload, "* <origin hex>", says that a process gave the
// namespace a new epoch: every L1 is to be marked not fresh.
const flushPrefix = "* "

func encodeFlush(origin string) string { return flushPrefix + origin }

func decodeFlush(p string) (origin string, ok bool) {
	if len(p) != len(flushPrefix)+originHexLen || p[:len(flushPrefix)] != flushPrefix {
		return "", false
	}
	return p[len(flushPrefix):], true
}

func decodeInvalidation(p string) (h custHash, origin string, ok bool) {
	if len(p) != custHexLen+1+originHexLen || p[custHexLen] != ' ' {
		return h, "", false
	}
	h, ok = parseCustHash(p[:custHexLen])
	return h, p[custHexLen+1:], ok
}

// validNamespace allows what is safe in a key prefix and in a KEYS/SCAN
// pattern: letters, digits and ._- (no glob characters, no spaces).
func validNamespace(ns string) bool {
	if ns == "" || len(ns) > 64 {
		return false
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
