package sqltmpl

import (
	"fmt"
	"strings"
)

// A dialect section compiles to pieces: literal SQL text, values ($name ->
// ?) and slots (/* SLOT: name */ default /* END */ -> a fragment). Render
// only concatenates pieces, so its cost does not depend on how the SQL is
// written.

type pieceKind int

const (
	pieceText pieceKind = iota
	pieceBind
	pieceSlot
)

type piece struct {
	kind pieceKind
	text string // pieceText: the SQL
	name string // pieceBind, pieceSlot: the parameter or derived value
}

// compiled is one dialect section of a template.
type compiled struct {
	source string // the section as written
	pieces []piece
	binds  []string        // names of $values in order of first use
	slots  map[string]bool // names of slots
	size   int             // length of the text pieces, for the builder
}

// Slot markers. The marker is a block comment, so the section with its
// default text stays valid SQL.
const (
	slotOpen = "SLOT:"
	slotEnd  = "END"
)

// compileSQL scans one section: string literals, quoted identifiers and
// comments are copied as they are; outside them $name is a value, and a
// ? (a positional parameter the template did not name), a $ not followed
// by a name, or a ; (a second statement) is an error.
func compileSQL(src string) (*compiled, error) {
	c := &compiled{source: src, slots: map[string]bool{}}
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			c.pieces = append(c.pieces, piece{kind: pieceText, text: text.String()})
			c.size += text.Len()
			text.Reset()
		}
	}
	seenBind := map[string]bool{}
	inSlot := "" // the slot being skipped, "" outside one
	slotLine := 0
	line := 1
	lineAt := func(i int) int { return line + strings.Count(src[:i], "\n") }
	errAt := func(i int, format string, args ...any) error {
		return fmt.Errorf("line %d: %s", lineAt(i), fmt.Sprintf(format, args...))
	}
	emit := func(s string) {
		if inSlot == "" {
			text.WriteString(s)
		}
	}
	for i := 0; i < len(src); {
		ch := src[i]
		switch {
		case ch == '\'' || ch == '"':
			end := quotedEnd(src, i)
			if end < 0 {
				return nil, errAt(i, "unterminated %c", ch)
			}
			emit(src[i:end])
			i = end
		case strings.HasPrefix(src[i:], "--"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src)
			} else {
				end += i
			}
			emit(src[i:end])
			i = end
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, errAt(i, "unterminated /* comment")
			}
			end += i + 4
			body := strings.TrimSpace(src[i+2 : end-2])
			switch {
			case strings.HasPrefix(body, slotOpen):
				name := strings.TrimSpace(strings.TrimPrefix(body, slotOpen))
				if inSlot != "" {
					return nil, errAt(i, "slot %s opened inside slot %s (line %d); close it with /* END */ first", name, inSlot, slotLine)
				}
				if !validName(name) {
					return nil, errAt(i, "slot name %q is not a parameter name", name)
				}
				flush()
				c.pieces = append(c.pieces, piece{kind: pieceSlot, name: name})
				c.slots[name] = true
				inSlot, slotLine = name, lineAt(i)
			case body == slotEnd:
				if inSlot == "" {
					return nil, errAt(i, "/* END */ without an open slot")
				}
				inSlot = ""
			default:
				emit(src[i:end])
			}
			i = end
		case ch == '$':
			j := i + 1
			for j < len(src) && isNameByte(src[j], j == i+1) {
				j++
			}
			name := src[i+1 : j]
			if !validName(name) {
				return nil, errAt(i, "$ must start a value name such as $days (got %q)", src[i:min(len(src), i+8)])
			}
			if inSlot != "" {
				return nil, errAt(i, "value $%s inside slot %s: a slot's default text must be plain SQL", name, inSlot)
			}
			flush()
			c.pieces = append(c.pieces, piece{kind: pieceBind, name: name})
			if !seenBind[name] {
				seenBind[name] = true
				c.binds = append(c.binds, name)
			}
			i = j
		case ch == '?':
			return nil, errAt(i, "? in a template: name the value ($name) so that metadata and SQL can be checked")
		case ch == ';':
			if strings.TrimSpace(src[i+1:]) != "" {
				return nil, errAt(i, "; before the end: a section is exactly one statement")
			}
			i = len(src) // a final ; is dropped: the driver wraps the statement
		default:
			emit(src[i : i+1])
			i++
		}
	}
	if inSlot != "" {
		return nil, fmt.Errorf("line %d: slot %s is never closed with /* END */", slotLine, inSlot)
	}
	flush()
	if len(c.pieces) == 0 {
		return nil, fmt.Errorf("empty statement")
	}
	// Trailing white space of the last text piece, so the rendered
	// statement ends at its last token.
	if last := &c.pieces[len(c.pieces)-1]; last.kind == pieceText {
		trimmed := strings.TrimRight(last.text, " \t\r\n")
		c.size -= len(last.text) - len(trimmed)
		last.text = trimmed
	}
	return c, nil
}

// quotedEnd returns the index just after the quoted literal or identifier
// starting at src[i] (a doubled quote is an escaped one), or -1.
func quotedEnd(src string, i int) int {
	q := src[i]
	for j := i + 1; j < len(src); j++ {
		if src[j] == q {
			if j+1 < len(src) && src[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return -1
}

func isNameByte(c byte, first bool) bool {
	return c >= 'a' && c <= 'z' || c == '_' || !first && c >= '0' && c <= '9'
}

// validName: lowercase snake_case, as parameter, slot and column names are.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// checkFragment refuses a slot fragment that could change the statement's
// shape beyond an expression: a value, a parameter, a comment, a second
// statement, an unbalanced quote or parenthesis.
func checkFragment(f string) error {
	if strings.TrimSpace(f) == "" {
		return fmt.Errorf("is empty")
	}
	depth := 0
	for i := 0; i < len(f); i++ {
		switch c := f[i]; c {
		case '\'', '"':
			end := quotedEnd(f, i)
			if end < 0 {
				return fmt.Errorf("has an unterminated %c", c)
			}
			i = end - 1
		case '$', '?':
			return fmt.Errorf("contains %c: a fragment is fixed SQL without values", c)
		case ';':
			return fmt.Errorf("contains ;")
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return fmt.Errorf("has an unbalanced )")
			}
		case '-', '/':
			if i+1 < len(f) && (f[i+1] == '-' && c == '-' || f[i+1] == '*' && c == '/') {
				return fmt.Errorf("contains a comment")
			}
		}
	}
	if depth != 0 {
		return fmt.Errorf("has an unbalanced (")
	}
	return nil
}
