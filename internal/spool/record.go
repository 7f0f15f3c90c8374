package spool

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record framing. A record is one line holding one JSON object:
//
//	{"crc":"<8 lowercase hex>","kind":"<kind>","data":<payload>}\n
//
// The CRC-32C covers every byte after crcPrefixLen up to, not including, the
// '\n'. The fixed prefix lets a record be checked without a JSON parser.
const (
	recStart     = `{"crc":"`
	recCRCEnd    = `",`
	recKindStart = `"kind":"`
	recKindEnd   = `","data":`
	crcPrefixLen = len(recStart) + 8 + len(recCRCEnd) // 18: {"crc":"xxxxxxxx",
	// recOverhead is a record's length less its kind and payload: the
	// framing, the closing '}' and the '\n'.
	recOverhead  = crcPrefixLen + len(recKindStart) + len(recKindEnd) + 1 + 1
	minRecordLen = recOverhead - 1 + 1 + 2 // shortest line without '\n': kind "a", payload "{}"
)

// Input limits checked by Append.
const (
	MaxKindLen    = 32      // longest record kind
	MaxPayloadLen = 4 << 20 // largest payload in bytes
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Reasons reported in Entry.Corrupt and Report. They are stable strings.
const (
	ReasonEmptyLine   = "empty line"
	ReasonShort       = "line too short for a record"
	ReasonPrefix      = `line does not start with {"crc":"`
	ReasonCRCField    = "crc field is not 8 lowercase hex digits"
	ReasonChecksum    = "checksum mismatch"
	ReasonKindField   = `no "kind" field after crc`
	ReasonKind        = "kind is not [a-z_]{1,32}"
	ReasonDataField   = `no "data" field after kind`
	ReasonPayload     = "payload is not a JSON object"
	ReasonUnterminate = "incomplete final line in a closed segment"
)

// ErrInvalidRecord is wrapped by every Append error caused by bad input (kind
// or payload); the writer stays usable after it.
var ErrInvalidRecord = errors.New("invalid record")

// validKind reports whether k matches [a-z_]{1,32}.
func validKind[T string | []byte](k T) bool {
	if len(k) == 0 || len(k) > MaxKindLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

func checkKind(kind string) error {
	if !validKind(kind) {
		return fmt.Errorf("%w: kind %q is not [a-z_]{1,32}", ErrInvalidRecord, kind)
	}
	return nil
}

// checkPayload applies the cheap checks the framing depends on: a non-empty
// compact JSON object on one line. It does not parse the JSON (callers encode
// it; the uploader quarantines what the warehouse rejects).
func checkPayload(p []byte) error {
	switch {
	case len(p) == 0:
		return fmt.Errorf("%w: empty payload", ErrInvalidRecord)
	case len(p) > MaxPayloadLen:
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrInvalidRecord, len(p), MaxPayloadLen)
	case len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}':
		return fmt.Errorf("%w: payload must be a JSON object ({...})", ErrInvalidRecord)
	case bytes.IndexByte(p, '\n') >= 0:
		return fmt.Errorf("%w: payload contains a newline (compact JSON required)", ErrInvalidRecord)
	}
	return nil
}

// recordLen is the encoded length of a record including its '\n'.
func recordLen(kind string, payload []byte) int {
	return recOverhead + len(kind) + len(payload)
}

const hexDigits = "0123456789abcdef"

// appendRecord appends the framed record (with '\n') to buf. kind and payload
// must have passed checkKind and checkPayload.
func appendRecord(buf []byte, kind string, payload []byte) []byte {
	start := len(buf)
	buf = append(buf, recStart...)
	buf = append(buf, "00000000"...)
	buf = append(buf, recCRCEnd...)
	buf = append(buf, recKindStart...)
	buf = append(buf, kind...)
	buf = append(buf, recKindEnd...)
	buf = append(buf, payload...)
	buf = append(buf, '}')
	sum := crc32.Checksum(buf[start+crcPrefixLen:], castagnoli)
	h := buf[start+len(recStart) : start+len(recStart)+8]
	for i := 7; i >= 0; i-- {
		h[i] = hexDigits[sum&0xf]
		sum >>= 4
	}
	return append(buf, '\n')
}

// parseRecord checks one line (without its '\n'). On success it returns the
// kind and payload (sub-slices of line) and an empty reason.
func parseRecord(line []byte) (kind, payload []byte, reason string) {
	if len(line) == 0 {
		return nil, nil, ReasonEmptyLine
	}
	if len(line) < minRecordLen {
		return nil, nil, ReasonShort
	}
	if !bytes.HasPrefix(line, []byte(recStart)) {
		return nil, nil, ReasonPrefix
	}
	var want uint32
	for _, c := range line[len(recStart) : len(recStart)+8] {
		switch {
		case c >= '0' && c <= '9':
			want = want<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			want = want<<4 | uint32(c-'a'+10)
		default:
			return nil, nil, ReasonCRCField
		}
	}
	if string(line[len(recStart)+8:crcPrefixLen]) != recCRCEnd {
		return nil, nil, ReasonCRCField
	}
	body := line[crcPrefixLen:]
	if crc32.Checksum(body, castagnoli) != want {
		return nil, nil, ReasonChecksum
	}
	// The checksum matched, so what follows is what a writer framed, unless
	// the line was forged or framed by another program: check it anyway.
	if !bytes.HasPrefix(body, []byte(recKindStart)) {
		return nil, nil, ReasonKindField
	}
	body = body[len(recKindStart):]
	q := bytes.IndexByte(body, '"')
	if q < 0 {
		return nil, nil, ReasonKindField
	}
	kind, body = body[:q], body[q:]
	if !validKind(kind) {
		return nil, nil, ReasonKind
	}
	if !bytes.HasPrefix(body, []byte(recKindEnd)) {
		return nil, nil, ReasonDataField
	}
	if len(body) < len(recKindEnd)+3 || body[len(body)-1] != '}' {
		return nil, nil, ReasonPayload
	}
	payload = body[len(recKindEnd) : len(body)-1]
	if payload[0] != '{' || payload[len(payload)-1] != '}' {
		return nil, nil, ReasonPayload
	}
	return kind, payload, ""
}
