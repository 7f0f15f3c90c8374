package query

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// hashDomain versions the hash input's encoding. Changing the encoding (or
// what a compiler puts in Key) means a new version, so that no hash can
// name two different questions.
const hashDomain = "activitybi/query-hash/v1"

// QueryHash names a question of one customer: the same customer and Key
// always give the same hash, in every process and release of this version.
// It is "q_" and the first 32 hex digits (128 bits) of the SHA-256 of
// hashDomain, then the customer and the key, each preceded by its length
// as a uvarint, so that no two (customer, key) pairs share an encoding.
func QueryHash(customer string, key []byte) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte(hashDomain))
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(customer)))])
	h.Write([]byte(customer))
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(key)))])
	h.Write(key)
	var sum [sha256.Size]byte
	return "q_" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}
