package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// keyError is a problem with one key. file is "" for Validate, which knows
// no file; line is 0 when the key's line is unknown.
type keyError struct {
	file string
	line int
	key  string
	msg  string // printed after "key: ", or alone when key is ""
}

func (e *keyError) Error() string {
	prefix := "config"
	if e.file != "" {
		prefix = e.file
	}
	if e.line > 0 {
		prefix += ":" + strconv.Itoa(e.line)
	}
	if e.key == "" {
		return prefix + ": " + e.msg
	}
	return prefix + ": " + e.key + ": " + e.msg
}

// decoder overlays a parsed TOML document onto a Config. It does the typing
// itself, rather than toml.Decode into the struct, so that every error can
// name its key and line in the same form.
type decoder struct {
	file  string
	lines map[string]int // key (toml.Key.String()) -> line of first appearance
	errs  []*keyError
}

func parse(file string, data []byte) (*Config, error) {
	var raw map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &keyError{file: file, line: pe.Position.Line, msg: pe.Message}
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c := Default()
	d := &decoder{file: file, lines: keyLines(data)}
	d.table(nil, raw, reflect.ValueOf(c).Elem())
	// Validate even after decode errors: a field that failed to decode kept
	// its valid default, so every problem is reported in one run.
	for _, p := range c.problems() {
		d.errs = append(d.errs, &keyError{file: file, line: d.line(strings.Split(p.key, ".")), key: p.key, msg: p.msg})
	}
	if len(d.errs) == 0 {
		return c, nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		li, lj := d.errs[i].line, d.errs[j].line
		return li != 0 && (lj == 0 || li < lj)
	})
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return nil, errors.Join(errs...)
}

// line finds the line of key, or of its nearest parent that has one (a key
// inside an inline table has no line of its own here).
func (d *decoder) line(key toml.Key) int {
	for i := len(key); i > 0; i-- {
		if n, ok := d.lines[key[:i].String()]; ok {
			return n
		}
	}
	return 0
}

func (d *decoder) fail(key toml.Key, format string, args ...any) {
	d.errs = append(d.errs, &keyError{file: d.file, line: d.line(key), key: key.String(), msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) table(path toml.Key, m map[string]any, rv reflect.Value) {
	fields := map[string]int{}
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		fields[rt.Field(i).Tag.Get("toml")] = i
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		li, lj := d.line(child(path, names[i])), d.line(child(path, names[j]))
		if li != lj {
			return li < lj
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		key := child(path, name)
		i, ok := fields[name]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", key.String())
			if s := suggest(name, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", child(path, s).String())
			}
			d.errs = append(d.errs, &keyError{file: d.file, line: d.line(key), msg: msg})
			continue
		}
		d.value(key, m[name], rv.Field(i))
	}
}

func child(path toml.Key, name string) toml.Key {
	return append(path[:len(path):len(path)], name)
}

func (d *decoder) value(key toml.Key, v any, fv reflect.Value) {
	if u, ok := fv.Addr().Interface().(toml.Unmarshaler); ok {
		if err := u.UnmarshalTOML(v); err != nil {
			d.fail(key, "%v", err)
		}
		return
	}
	switch fv.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.fail(key, "expected a table, got %s", typeName(v))
			return
		}
		d.table(key, m, fv)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			d.fail(key, "expected a string, got %s", typeName(v))
			return
		}
		fv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.fail(key, "expected true or false, got %s", typeName(v))
			return
		}
		fv.SetBool(b)
	case reflect.Int:
		n, ok := v.(int64)
		if !ok {
			d.fail(key, "expected an integer, got %s", typeName(v))
			return
		}
		if fv.OverflowInt(n) {
			d.fail(key, "%d is out of range", n)
			return
		}
		fv.SetInt(n)
	case reflect.Slice: // only []string is used
		arr, ok := v.([]any)
		if !ok {
			d.fail(key, "expected a list of strings, got %s", typeName(v))
			return
		}
		list := make([]string, 0, len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				d.fail(key, "expected a list of strings, element %d is %s", i+1, typeName(e))
				return
			}
			list = append(list, s)
		}
		fv.Set(reflect.ValueOf(list))
	default:
		panic(fmt.Sprintf("config: field %s has unsupported kind %s", key, fv.Kind()))
	}
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return fmt.Sprintf("%T", v)
}

// suggest returns the known name closest to name, if it is a likely typo.
func suggest(name string, fields map[string]int) string {
	limit := min(2, max(1, len(name)/3))
	best, bestD := "", limit+1
	for f := range fields {
		if dist := editDistance(name, f); dist < bestD || dist == bestD && f < best {
			best, bestD = f, dist
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent bytes.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// keyLines maps every key and table in data to the line where it first
// appears. The TOML decoder does not expose key positions, so this is a
// line scanner, good enough for error messages: it knows table headers,
// dotted and quoted keys and multi-line strings, not keys written inside
// multi-line inline tables.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	record := func(k toml.Key, n int) {
		for i := 1; i <= len(k); i++ {
			if s := k[:i].String(); lines[s] == 0 {
				lines[s] = n
			}
		}
	}
	var table toml.Key
	inString := "" // the delimiter while inside a multi-line string
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if inString != "" {
			if strings.Count(line, inString)%2 == 1 {
				inString = ""
			}
			continue
		}
		s := strings.TrimSpace(line)
		if strings.HasPrefix(s, "[") {
			if k, rest, ok := scanKey(strings.TrimLeft(s, "[")); ok && strings.HasPrefix(rest, "]") {
				table = k
				record(k, n)
			}
			continue
		}
		k, rest, ok := scanKey(s)
		if !ok || !strings.HasPrefix(rest, "=") {
			continue
		}
		record(append(table[:len(table):len(table)], k...), n)
		for _, q := range []string{`"""`, `'''`} {
			if strings.Count(rest, q)%2 == 1 {
				inString = q
				break
			}
		}
	}
	return lines
}

// scanKey reads a possibly dotted and quoted TOML key at the start of s and
// returns it with the rest of s, leading spaces removed.
func scanKey(s string) (toml.Key, string, bool) {
	var k toml.Key
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, "", false
			}
			part, err := strconv.Unquote(s[:end+1])
			if err != nil {
				part = s[1:end]
			}
			k, s = append(k, part), s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, "", false
			}
			k, s = append(k, s[1:end+1]), s[end+2:]
		default:
			end := 0
			for end < len(s) && isBareKeyChar(s[end]) {
				end++
			}
			if end == 0 {
				return nil, "", false
			}
			k, s = append(k, s[:end]), s[end:]
		}
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return k, s, true
		}
		s = s[1:]
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
