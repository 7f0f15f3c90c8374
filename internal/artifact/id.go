package artifact

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

const (
	// idAlphabet is Crockford's base32 in lowercase, the alphabet of ULIDs:
	// no i, l, o, u, so an id read aloud or retyped is unambiguous.
	idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	// idSuffixBytes is the randomness added after the ULID; a ULID alone
	// has 80 random bits, the id 80+64 = 144.
	idSuffixBytes = 8
	// IDLen is the length of every id: 26 ULID characters and 13 for the
	// 64 extra bits.
	IDLen = ulid.EncodedSize + (idSuffixBytes*8+4)/5
)

var idEncoding = base32.NewEncoding(idAlphabet).WithPadding(base32.NoPadding)

// newID returns a fresh id for an artifact created at t.
func newID(t time.Time) (string, error) {
	// The ULID's entropy is crypto/rand, not ulid's default monotonic
	// source, whose ids within one millisecond differ by one.
	u, err := ulid.New(ulid.Timestamp(t), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	var suffix [idSuffixBytes]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return strings.ToLower(u.String()) + idEncoding.EncodeToString(suffix[:]), nil
}

// ValidID reports whether s has the shape of an artifact id: IDLen
// characters of lowercase Crockford base32. Anything else cannot name an
// artifact and is answered as not found without a lookup.
func ValidID(s string) bool {
	if len(s) != IDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(idAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
