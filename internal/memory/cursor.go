package memory

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"strings"
)

// A cursor is where the next page starts: a section and an offset in it,
// tied to the context it was made for (version and scope) and to the topics
// asked for. It is opaque to callers: unpadded base64url of
//
//	byte    cursorMagic ('m')
//	byte    cursorFormat (1)
//	uvarint context version (a uint64 of the int64)
//	byte    section (0..numSections-1)
//	uvarint offset in that section
//	byte    topics mask (bit i: section i)
//	uint32  FNV-1a of the scope, big-endian
//
// at most 26 bytes, 35 characters.

const (
	cursorMagic  = 'm'
	cursorFormat = 1
	// maxCursorLen is the longest encoded cursor, in characters.
	maxCursorLen = 35
	// maxCursorOffset bounds the offset: no section holds more items
	// (the Builder's limits are far below it).
	maxCursorOffset = 1 << 31
)

// cursor is a decoded cursor.
type cursor struct {
	version   int64
	section   section
	offset    int
	topics    uint8
	scopeHash uint32
}

// errBadCursor is what decodeCursor says about anything that is not a
// cursor it made.
var errBadCursor = errors.New("not a cursor from get_context")

func scopeHash(scope string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(scope))
	return h.Sum32()
}

func (c cursor) encode() string {
	b := make([]byte, 0, 26)
	b = append(b, cursorMagic, cursorFormat)
	b = binary.AppendUvarint(b, uint64(c.version))
	b = append(b, byte(c.section))
	b = binary.AppendUvarint(b, uint64(c.offset))
	b = append(b, c.topics)
	b = binary.BigEndian.AppendUint32(b, c.scopeHash)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses s; every field is checked, and the whole string must
// be used, so that exactly one string encodes each cursor.
func decodeCursor(s string) (cursor, error) {
	// The decoder skips \r and \n; a cursor is exactly what encode
	// wrote, so refuse them.
	if len(s) == 0 || len(s) > maxCursorLen || strings.ContainsAny(s, "\r\n") {
		return cursor{}, errBadCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != cursorMagic || b[1] != cursorFormat {
		return cursor{}, errBadCursor
	}
	b = b[2:]
	var c cursor
	v, n := binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(v) {
		return cursor{}, errBadCursor
	}
	c.version = int64(v)
	b = b[n:]
	if len(b) < 1 || b[0] >= byte(numSections) {
		return cursor{}, errBadCursor
	}
	c.section = section(b[0])
	b = b[1:]
	off, n := binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(off) || off > maxCursorOffset {
		return cursor{}, errBadCursor
	}
	c.offset = int(off)
	b = b[n:]
	if len(b) != 5 {
		return cursor{}, errBadCursor
	}
	c.topics = b[0]
	if c.topics == 0 || c.topics>>numSections != 0 || c.topics&(1<<c.section) == 0 {
		return cursor{}, errBadCursor
	}
	c.scopeHash = binary.BigEndian.Uint32(b[1:])
	return c, nil
}

// uvarintLen is the length of v's shortest encoding; a longer one (with
// redundant continuation bytes) is refused.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
