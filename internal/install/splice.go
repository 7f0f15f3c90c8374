package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// ServersKey is the top-level member both Claude clients read MCP servers
// from.
const ServersKey = "mcpServers"

// Action says what Set did with the server entry.
type Action string

const (
	Added     Action = "added"
	Replaced  Action = "replaced"
	Unchanged Action = "unchanged" // an equal entry was already there
)

// Change is the outcome of Set.
type Change struct {
	Action Action
	// Out is the new document; src itself when Action is Unchanged.
	Out []byte
	// Previous is the entry's old value as the source spelled it (comments
	// and all), for Replaced and Unchanged.
	Previous []byte
	// Created is true when src was empty, so Out is a new document.
	Created bool

	edits []edit // in source order; what turned src into Out
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// Set returns src with mcpServers[name] set to value (standard JSON). src
// may hold comments and trailing commas; only the bytes that must change
// do: the entry's value is replaced, or the entry (and, when missing, the
// "mcpServers" object) is inserted after the last member, indented like its
// neighbours. Other members, comments, key order and odd whitespace stay
// byte for byte. An empty src gives a new document.
//
// It refuses, writing nothing: src that is not JSON, or whose top-level
// value is not an object; an "mcpServers" that is not an object; and
// duplicate "mcpServers" members or duplicate entries for name, where it
// cannot tell which one the client would use.
func Set(src []byte, name string, value []byte) (*Change, error) {
	if name == "" || !utf8.ValidString(name) {
		return nil, fmt.Errorf("server name %q is empty or not UTF-8", name)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, value); err != nil {
		return nil, fmt.Errorf("server entry is not valid JSON: %w", err)
	}
	val := compact.Bytes()
	key := quote(name)

	d, err := scan(src)
	if err != nil {
		return nil, fmt.Errorf("not valid JSON (even allowing comments and trailing commas): %w", err)
	}
	st := detectStyle(d)
	if d.root == nil {
		// Nothing but whitespace (or comments, which are kept).
		doc := `{"` + ServersKey + `":{` + key + `:` + string(val) + `}}`
		text := render([]byte(doc), "", st, true) + st.nl
		e := edit{0, len(src), text}
		if len(bytes.TrimSpace(src)) > 0 {
			e = edit{len(src), len(src), text}
			if !bytes.HasSuffix(src, []byte("\n")) && !bytes.HasSuffix(src, []byte("\r")) {
				e.text = st.nl + text
			}
		}
		return finish(src, &Change{Action: Added, Created: true}, []edit{e}), nil
	}
	if d.root.kind != '{' {
		return nil, fmt.Errorf("the top-level value is %s, not an object", kindName(src, d.root))
	}

	servers, err := only(d, d.root, ServersKey, "the top-level object")
	if err != nil {
		return nil, err
	}
	if servers == nil {
		member := `{` + key + `:` + string(val) + `}`
		edits := insertMember(d, d.root, quote(ServersKey), []byte(member), st)
		return finish(src, &Change{Action: Added}, edits), nil
	}
	if servers.val.kind != '{' {
		return nil, fmt.Errorf("%q (at %s) is %s, not an object", ServersKey, lineCol(src, servers.keyStart), kindName(src, servers.val))
	}
	entry, err := only(d, servers.val, name, fmt.Sprintf("%q", ServersKey))
	if err != nil {
		return nil, err
	}
	if entry == nil {
		edits := insertMember(d, servers.val, key, val, st)
		return finish(src, &Change{Action: Added}, edits), nil
	}
	prev := src[entry.val.start:entry.val.end]
	if equalJSON(d.standard(entry.val.start, entry.val.end), val) {
		return &Change{Action: Unchanged, Out: src, Previous: prev}, nil
	}
	e := replaceValue(d, entry, val, st)
	return finish(src, &Change{Action: Replaced, Previous: prev}, []edit{e}), nil
}

// finish applies edits (in source order) to src.
func finish(src []byte, c *Change, edits []edit) *Change {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	out.Grow(len(src) + 256)
	pos := 0
	for _, e := range edits {
		out.Write(src[pos:e.start])
		out.WriteString(e.text)
		pos = e.end
	}
	out.Write(src[pos:])
	c.Out, c.edits = out.Bytes(), edits
	return c
}

// only returns obj's member called key, nil if there is none, or an error
// naming the lines when there are several.
func only(d *doc, obj *node, key, where string) (*member, error) {
	var found []*member
	for i := range obj.members {
		if obj.members[i].key == key {
			found = append(found, &obj.members[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	at := make([]string, len(found))
	for i, m := range found {
		at[i] = lineCol(d.src, m.keyStart)
	}
	return nil, fmt.Errorf("%q appears %d times in %s (at %s): it is ambiguous which one counts; remove all but one",
		key, len(found), where, strings.Join(at, ", "))
}

// lineCol spells an offset as line:column, both 1-based.
func lineCol(src []byte, off int) string {
	var e *SyntaxError
	errors.As(errorAt(src, off, ""), &e)
	return fmt.Sprintf("%d:%d", e.Line, e.Col)
}

func kindName(src []byte, n *node) string {
	switch n.kind {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 'l':
		if src[n.start] == 'n' {
			return "null"
		}
		return "a boolean"
	}
	return "an object"
}

// equalJSON compares two standard JSON texts as values.
func equalJSON(a, b []byte) bool {
	decode := func(b []byte) (any, bool) {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		return v, dec.Decode(&v) == nil
	}
	va, oka := decode(a)
	vb, okb := decode(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

// quote spells s as a JSON string, leaving <, > and & alone.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// style is how the document is laid out, so additions look like the rest.
type style struct {
	nl     string // line break: "\n", "\r\n" or "\r"
	unit   string // one level of indentation
	colon  string // ": " or ":"
	comma  string // between members of a one-line object: ", " or ","
	inline bool   // the top-level object is all on one line
}

func detectStyle(d *doc) style {
	src := d.src
	st := style{nl: "\n", unit: "  ", colon: ": ", comma: ", "}
	if i := bytes.IndexByte(src, '\n'); i > 0 && src[i-1] == '\r' {
		st.nl = "\r\n"
	} else if i < 0 && bytes.IndexByte(src, '\r') >= 0 {
		st.nl = "\r"
	}
	root := d.root
	if root == nil || root.kind != '{' {
		return st
	}
	st.inline = len(root.members) > 0 && !hasNL(src[root.start:root.end])
	rootIndent, _ := lineIndent(src, root.start)
	for _, m := range root.members {
		ws, first := lineIndent(src, m.keyStart)
		if first && len(ws) > len(rootIndent) && strings.HasPrefix(ws, rootIndent) {
			st.unit = ws[len(rootIndent):]
			break
		}
	}
	if len(root.members) > 0 {
		if c := root.members[0].colon + 1; c < len(src) && src[c] != ' ' && src[c] != '\t' {
			st.colon, st.comma = ":", ","
		}
	}
	return st
}

func hasNL(b []byte) bool { return bytes.ContainsAny(b, "\r\n") }

// lineIndent returns the leading spaces and tabs of the line holding off,
// and whether only they precede off on that line.
func lineIndent(src []byte, off int) (string, bool) {
	start := off
	for start > 0 && src[start-1] != '\n' && src[start-1] != '\r' {
		start--
	}
	end := start
	for end < off && (src[end] == ' ' || src[end] == '\t') {
		end++
	}
	return string(src[start:end]), end == off
}

// render lays out compact JSON: one member or element per line, indented
// by base plus st.unit per level, or all on one line.
func render(compact []byte, base string, st style, multiline bool) string {
	var b strings.Builder
	depth := 0
	newline := func() {
		b.WriteString(st.nl)
		b.WriteString(base)
		for range depth {
			b.WriteString(st.unit)
		}
	}
	for i := 0; i < len(compact); i++ {
		c := compact[i]
		switch c {
		case '"':
			j := i + 1
			for compact[j] != '"' {
				if compact[j] == '\\' {
					j++
				}
				j++
			}
			b.Write(compact[i : j+1])
			i = j
		case '{', '[':
			b.WriteByte(c)
			if next := compact[i+1]; next == '}' || next == ']' {
				b.WriteByte(next)
				i++
				continue
			}
			depth++
			if multiline {
				newline()
			}
		case '}', ']':
			depth--
			if multiline {
				newline()
			}
			b.WriteByte(c)
		case ',':
			b.WriteByte(c)
			if multiline {
				newline()
			} else {
				b.WriteString(st.comma[1:])
			}
		case ':':
			b.WriteString(st.colon)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// insertMember adds key: value (compact JSON) as the last member of obj.
func insertMember(d *doc, obj *node, key string, value []byte, st style) []edit {
	src := d.src
	objIndent, _ := lineIndent(src, obj.start)
	var last *member
	if n := len(obj.members); n > 0 {
		last = &obj.members[n-1]
	}
	inline := st.inline
	if last != nil {
		inline = !hasNL(src[obj.start:obj.end])
	}

	if inline {
		text := key + st.colon + render(value, "", st, false)
		switch {
		case last == nil:
			if src[obj.start+1] == ' ' { // "{ }" keeps its look: "{ "k": v }"
				text = " " + text
			}
			return []edit{{obj.start + 1, obj.start + 1, text}}
		case last.comma >= 0: // keep the trailing comma style
			return []edit{{last.comma + 1, last.comma + 1, st.comma[1:] + text + ","}}
		default:
			return []edit{{last.val.end, last.val.end, st.comma + text}}
		}
	}

	// One member per line: indent like the last member that starts a line,
	// else one level deeper than the object.
	indent := objIndent + st.unit
	for i := len(obj.members) - 1; i >= 0; i-- {
		if ws, first := lineIndent(src, obj.members[i].keyStart); first {
			indent = ws
			break
		}
	}
	text := key + st.colon + render(value, indent, st, true)
	closing := obj.end - 1
	if last == nil && obj.tailCommentEnd < 0 {
		// Empty but for whitespace: lay the object out afresh.
		return []edit{{obj.start + 1, closing, st.nl + indent + text + st.nl + objIndent}}
	}
	var edits []edit
	anchor := obj.start + 1
	if last != nil {
		anchor = last.val.end
		if last.comma >= 0 {
			anchor = last.comma + 1
			text += ","
		} else {
			edits = append(edits, edit{last.val.end, last.val.end, ","})
		}
	}
	// After the last member and any comment that follows it — including
	// a comment on a line of its own, such as a commented-out server —
	// but before the line ends.
	anchor = max(anchor, obj.tailCommentEnd)
	at := sameLineEnd(src, anchor)
	e := edit{at, at, st.nl + indent + text}
	if last == nil {
		// Only comments inside: if the closing brace shares our line, give
		// it a line of its own.
		j := at
		for j < closing && (src[j] == ' ' || src[j] == '\t') {
			j++
		}
		if j == closing {
			e.end = closing
			e.text += st.nl + objIndent
		}
	}
	return append(edits, e)
}

// sameLineEnd passes spaces, tabs and comments on the line from off on,
// returning the end of the last comment passed (off if none).
func sameLineEnd(src []byte, off int) int {
	end := off
	for p := off; p < len(src); {
		switch src[p] {
		case ' ', '\t':
			p++
		case '/':
			if p+1 < len(src) && src[p+1] == '/' {
				q := p + 2
				for q < len(src) && src[q] != '\n' && src[q] != '\r' {
					q++
				}
				return q
			}
			if p+1 < len(src) && src[p+1] == '*' {
				q := bytes.Index(src[p+2:], []byte("*/"))
				if q < 0 || hasNL(src[p+2:p+2+q]) {
					return end
				}
				p = p + 2 + q + 2
				end = p
				continue
			}
			return end
		default:
			return end
		}
	}
	return end
}

// replaceValue swaps m's value for value (compact JSON), on one line if
// the old value was a one-line object or array, else one member per line.
func replaceValue(d *doc, m *member, value []byte, st style) edit {
	src := d.src
	old := src[m.val.start:m.val.end]
	multiline := !st.inline
	if hasNL(old) {
		multiline = true
	} else if (m.val.kind == '{' || m.val.kind == '[') && len(bytes.TrimSpace(old[1:len(old)-1])) > 0 {
		multiline = false
	}
	indent, _ := lineIndent(src, m.keyStart)
	return edit{m.val.start, m.val.end, render(value, indent, st, multiline)}
}
