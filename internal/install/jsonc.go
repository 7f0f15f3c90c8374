package install

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// This file is a small tolerant scanner for the JSON people hand-edit into
// client config files: standard JSON plus // and /* */ comments and trailing
// commas (what VS Code calls JSONC). It does not build values; it records
// where things are, so an edit can be spliced into the original bytes and
// leave everything else alone.

// maxDepth bounds nesting, as encoding/json does, so hostile input cannot
// exhaust the stack.
const maxDepth = 10000

// keepMembers is the deepest object level whose members are recorded: the
// top-level object (0) and its direct children such as "mcpServers" (1).
// Deeper objects — a large "projects" member, say — are only validated.
const keepMembers = 1

// utf8BOM may start a file written by Windows editors; it is kept as is.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// SyntaxError reports where the scanner gave up.
type SyntaxError struct {
	Line, Col int // 1-based; Col counts bytes
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// node is one value: its kind, its span in the source and, for objects
// shallow enough, its members.
type node struct {
	kind       byte // '{', '[', '"', '0' (number) or 'l' (true, false, null)
	start, end int  // src[start:end] is the value's text
	members    []member
	// For objects and arrays: where the run of whitespace and comments
	// before the closing bracket starts, and where the last comment in it
	// ends (-1 when there is none).
	tailStart, tailCommentEnd int
}

type member struct {
	key              string // decoded
	keyStart, keyEnd int
	colon            int
	val              *node
	comma            int // offset of the comma after the value, -1 if none
}

// doc is a scanned document.
type doc struct {
	src      []byte
	root     *node // nil for an empty document (only whitespace/comments)
	skipped  []span
	trailing []int // offsets of trailing commas
}

type span struct{ start, end int }

type scanner struct {
	src []byte
	pos int
	d   *doc
}

// scan checks src and records its structure. An empty source, or one
// holding only whitespace and comments, gives a doc with a nil root.
func scan(src []byte) (*doc, error) {
	s := &scanner{src: src, d: &doc{src: src}}
	if len(src) >= 3 && string(src[:3]) == string(utf8BOM) {
		s.d.skipped = append(s.d.skipped, span{0, 3})
		s.pos = 3
	}
	if _, err := s.skip(); err != nil {
		return nil, err
	}
	if s.pos == len(src) {
		return s.d, nil
	}
	root, err := s.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := s.skip(); err != nil {
		return nil, err
	}
	if s.pos != len(src) {
		return nil, s.errorf("unexpected %s after the top-level value", s.describe())
	}
	s.d.root = root
	return s.d, nil
}

func (s *scanner) errorf(format string, args ...any) error {
	return errorAt(s.src, s.pos, fmt.Sprintf(format, args...))
}

func errorAt(src []byte, off int, msg string) error {
	line, col := 1, 1
	for i := 0; i < off && i < len(src); i++ {
		if src[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &SyntaxError{Line: line, Col: col, Msg: msg}
}

// describe names the byte at pos for an error message.
func (s *scanner) describe() string {
	if s.pos >= len(s.src) {
		return "end of file"
	}
	r, _ := utf8.DecodeRune(s.src[s.pos:])
	return strconv.QuoteRune(r)
}

// skip passes whitespace and comments, returning the end of the last
// comment passed (-1 if none).
func (s *scanner) skip() (lastComment int, err error) {
	lastComment = -1
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		case '/':
			start := s.pos
			if s.pos+1 >= len(s.src) {
				return 0, s.errorf("unexpected '/'")
			}
			switch s.src[s.pos+1] {
			case '/':
				s.pos += 2
				for s.pos < len(s.src) && s.src[s.pos] != '\n' && s.src[s.pos] != '\r' {
					s.pos++
				}
			case '*':
				s.pos += 2
				for {
					if s.pos+1 >= len(s.src) {
						s.pos = start
						return 0, s.errorf("unterminated /* comment")
					}
					if s.src[s.pos] == '*' && s.src[s.pos+1] == '/' {
						s.pos += 2
						break
					}
					s.pos++
				}
			default:
				return 0, s.errorf("unexpected '/'")
			}
			s.d.skipped = append(s.d.skipped, span{start, s.pos})
			lastComment = s.pos
		default:
			return lastComment, nil
		}
	}
	return lastComment, nil
}

func (s *scanner) value(depth int) (*node, error) {
	if s.pos >= len(s.src) {
		return nil, s.errorf("unexpected end of file, want a value")
	}
	switch c := s.src[s.pos]; {
	case (c == '{' || c == '[') && depth >= maxDepth:
		return nil, s.errorf("nested more than %d deep", maxDepth)
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		start := s.pos
		if err := s.str(); err != nil {
			return nil, err
		}
		return &node{kind: '"', start: start, end: s.pos}, nil
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.src)-s.pos >= len(lit) && string(s.src[s.pos:s.pos+len(lit)]) == lit {
				start := s.pos
				s.pos += len(lit)
				return &node{kind: 'l', start: start, end: s.pos}, nil
			}
		}
	}
	return nil, s.errorf("unexpected %s, want a value", s.describe())
}

func (s *scanner) object(depth int) (*node, error) {
	n := &node{kind: '{', start: s.pos}
	s.pos++ // {
	tailStart := s.pos
	last, err := s.skip()
	if err != nil {
		return nil, err
	}
	if s.pos < len(s.src) && s.src[s.pos] == '}' {
		s.pos++
		n.end, n.tailStart, n.tailCommentEnd = s.pos, tailStart, last
		return n, nil
	}
	for {
		if s.pos >= len(s.src) || s.src[s.pos] != '"' {
			return nil, s.errorf("unexpected %s, want a member name in double quotes", s.describe())
		}
		m := member{keyStart: s.pos, comma: -1}
		if err := s.str(); err != nil {
			return nil, err
		}
		m.keyEnd = s.pos
		if depth <= keepMembers {
			if err := json.Unmarshal(s.src[m.keyStart:m.keyEnd], &m.key); err != nil {
				return nil, errorAt(s.src, m.keyStart, "bad member name: "+err.Error())
			}
		}
		if _, err := s.skip(); err != nil {
			return nil, err
		}
		if s.pos >= len(s.src) || s.src[s.pos] != ':' {
			return nil, s.errorf("unexpected %s, want ':' after the member name", s.describe())
		}
		m.colon = s.pos
		s.pos++
		if _, err := s.skip(); err != nil {
			return nil, err
		}
		if m.val, err = s.value(depth + 1); err != nil {
			return nil, err
		}
		tailStart = s.pos
		if last, err = s.skip(); err != nil {
			return nil, err
		}
		if s.pos < len(s.src) && s.src[s.pos] == ',' {
			m.comma = s.pos
			s.pos++
			tailStart = s.pos
			if last, err = s.skip(); err != nil {
				return nil, err
			}
			if s.pos < len(s.src) && s.src[s.pos] == '}' {
				s.d.trailing = append(s.d.trailing, m.comma)
			}
		}
		if depth <= keepMembers {
			n.members = append(n.members, m)
		}
		if s.pos < len(s.src) && s.src[s.pos] == '}' {
			s.pos++
			n.end, n.tailStart, n.tailCommentEnd = s.pos, tailStart, last
			return n, nil
		}
		if m.comma < 0 {
			return nil, s.errorf("unexpected %s, want ',' or '}' after an object member", s.describe())
		}
	}
}

func (s *scanner) array(depth int) (*node, error) {
	n := &node{kind: '[', start: s.pos}
	s.pos++ // [
	tailStart := s.pos
	last, err := s.skip()
	if err != nil {
		return nil, err
	}
	if s.pos < len(s.src) && s.src[s.pos] == ']' {
		s.pos++
		n.end, n.tailStart, n.tailCommentEnd = s.pos, tailStart, last
		return n, nil
	}
	for {
		if _, err := s.value(depth + 1); err != nil {
			return nil, err
		}
		tailStart = s.pos
		if last, err = s.skip(); err != nil {
			return nil, err
		}
		comma := false
		if s.pos < len(s.src) && s.src[s.pos] == ',' {
			comma = true
			c := s.pos
			s.pos++
			tailStart = s.pos
			if last, err = s.skip(); err != nil {
				return nil, err
			}
			if s.pos < len(s.src) && s.src[s.pos] == ']' {
				s.d.trailing = append(s.d.trailing, c)
			}
		}
		if s.pos < len(s.src) && s.src[s.pos] == ']' {
			s.pos++
			n.end, n.tailStart, n.tailCommentEnd = s.pos, tailStart, last
			return n, nil
		}
		if !comma {
			return nil, s.errorf("unexpected %s, want ',' or ']' after an array element", s.describe())
		}
	}
}

// str passes a string literal, checking escapes and control characters.
func (s *scanner) str() error {
	s.pos++ // opening quote
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '"':
			s.pos++
			return nil
		case c < 0x20:
			return s.errorf("control character %U in a string", rune(c))
		case c == '\\':
			s.pos++
			if s.pos >= len(s.src) {
				return s.errorf("unterminated string")
			}
			switch s.src[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				s.pos++
				for i := 0; i < 4; i++ {
					if s.pos >= len(s.src) || !isHex(s.src[s.pos]) {
						return s.errorf("bad \\u escape in a string")
					}
					s.pos++
				}
			default:
				return s.errorf("bad escape \\%c in a string", s.src[s.pos])
			}
		default:
			s.pos++
		}
	}
	return s.errorf("unterminated string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number passes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() (*node, error) {
	start := s.pos
	digits := func() bool {
		n := 0
		for s.pos < len(s.src) && isDigit(s.src[s.pos]) {
			s.pos++
			n++
		}
		return n > 0
	}
	if s.src[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.src) && s.src[s.pos] == '0':
		s.pos++
	case !digits():
		return nil, s.errorf("bad number")
	}
	if s.pos < len(s.src) && s.src[s.pos] == '.' {
		s.pos++
		if !digits() {
			return nil, s.errorf("bad number: want digits after '.'")
		}
	}
	if s.pos < len(s.src) && (s.src[s.pos] == 'e' || s.src[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.src) && (s.src[s.pos] == '+' || s.src[s.pos] == '-') {
			s.pos++
		}
		if !digits() {
			return nil, s.errorf("bad number: want digits in the exponent")
		}
	}
	return &node{kind: '0', start: start, end: s.pos}, nil
}

// standard returns src[start:end] as standard JSON: without the comments,
// byte order mark and trailing commas the scan found in that range.
func (d *doc) standard(start, end int) []byte {
	out := make([]byte, 0, end-start)
	pos := start
	// Both lists are in source order; walk them together.
	i, j := 0, 0
	for i < len(d.skipped) || j < len(d.trailing) {
		var cut span
		if j >= len(d.trailing) || i < len(d.skipped) && d.skipped[i].start < d.trailing[j] {
			cut = d.skipped[i]
			i++
		} else {
			cut = span{d.trailing[j], d.trailing[j] + 1}
			j++
		}
		if cut.end <= pos || cut.start >= end {
			continue
		}
		out = append(out, d.src[pos:max(cut.start, pos)]...)
		pos = min(cut.end, end)
	}
	return append(out, d.src[pos:end]...)
}

// Standardize turns JSON with comments and trailing commas into standard
// JSON, for tools that read only the latter.
func Standardize(src []byte) ([]byte, error) {
	d, err := scan(src)
	if err != nil {
		return nil, err
	}
	return d.standard(0, len(src)), nil
}
