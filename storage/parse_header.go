package storage

import (
	"bytes"
	"slices"
	"strings"
)

// ---- header sections ----

type hfield struct {
	name   string // lower-case
	vs, ve int    // value in header.text, unfolded (line ends removed)
}

type header struct {
	block  []byte // while reading
	text   string // block, once read
	fields []hfield
	used   int // bytes kept, names included
}

// readHeader reads a header section up to its blank line (consumed) and
// keeps at most MaxHeaderFields fields and MaxHeaderBytes bytes of it. A
// line that is neither a field nor a continuation ends the section without
// being consumed: the body starts there (as Postfix does).
func (p *parser) readHeader(bounds []string) (*header, error) {
	h, err := p.readFields(bounds)
	if err != nil {
		return nil, err
	}
	h.text, h.block = string(h.block), nil // one allocation for all values
	return h, nil
}

func (p *parser) readFields(bounds []string) (*header, error) {
	h := &header{}
	keep := false
	for {
		s, err := p.lr.next()
		if err != nil {
			return nil, err
		}
		switch {
		case !s.start:
			if keep {
				h.appendValue(s.data)
			}
		case len(s.data) == 0:
			return h, nil // blank line or end of stream
		case len(bounds) > 0 && (s.eol > 0 || s.last) && firstBound(s.data, bounds):
			p.lr.unread()
			return h, nil
		case s.data[0] == ' ' || s.data[0] == '\t':
			if keep {
				h.appendValue(s.data)
			}
		default:
			colon := fieldNameEnd(s.data)
			if colon < 0 {
				p.lr.unread()
				return h, nil
			}
			keep = len(h.fields) < MaxHeaderFields && h.used < MaxHeaderBytes
			if keep {
				name := fieldName(bytes.TrimRight(s.data[:colon], " \t"))
				h.used += len(name)
				h.fields = append(h.fields, hfield{name: name, vs: len(h.block), ve: len(h.block)})
				h.appendValue(s.data[colon+1:])
			}
		}
		if s.last {
			return h, nil
		}
	}
}

func firstBound(line []byte, bounds []string) bool {
	i, _ := matchBoundary(line, bounds)
	return i >= 0
}

func (h *header) appendValue(b []byte) {
	room := MaxHeaderBytes - h.used
	if room <= 0 {
		return
	}
	if len(b) > room {
		b = b[:room]
	}
	h.used += len(b)
	h.block = append(h.block, b...)
	h.fields[len(h.fields)-1].ve = len(h.block)
}

// fieldNameEnd returns the index of the colon ending a field name at the start
// of line (RFC 5322 §2.2: printable ASCII but colon; obsolete WSP before the
// colon allowed), or -1 if line is not a header field.
func fieldNameEnd(line []byte) int {
	wsp := false
	for i, c := range line {
		switch {
		case c == ':':
			if i == 0 {
				return -1
			}
			return i
		case c == ' ' || c == '\t':
			if i == 0 {
				return -1
			}
			wsp = true
		case c < 33 || c > 126 || wsp:
			return -1
		}
	}
	return -1
}

var commonFields = map[string]string{}

func init() {
	for _, n := range []string{"from", "to", "cc", "bcc", "sender", "reply-to", "subject", "date",
		"message-id", "in-reply-to", "references", "received", "return-path", "mime-version",
		"content-type", "content-transfer-encoding", "content-disposition", "content-id",
		"content-description", "content-language", "content-location", "content-md5",
		"dkim-signature", "list-id", "x-mailer", "user-agent", "delivered-to", "authentication-results"} {
		commonFields[n] = n
	}
}

// fieldName lower-cases a field name, without allocating for common ones.
func fieldName(b []byte) string {
	var buf [32]byte
	if len(b) <= len(buf) {
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if n, ok := commonFields[string(buf[:len(b)])]; ok {
			return n
		}
		return string(buf[:len(b)])
	}
	return strings.ToLower(string(b))
}

func (h *header) value(i int) string {
	f := h.fields[i]
	return h.text[f.vs:f.ve]
}

// get returns the first field called name (lower-case).
func (h *header) get(name string) (string, bool) {
	for i := range h.fields {
		if h.fields[i].name == name {
			return strings.TrimSpace(h.value(i)), true
		}
	}
	return "", false
}

// searchText renders the kept fields for SEARCH HEADER/FROM/TO/SUBJECT...
func (h *header) searchText() string {
	var sb strings.Builder
	for i := range h.fields {
		v := decodeText(h.value(i))
		if strings.ContainsAny(v, "\r\n") {
			v = strings.Map(func(r rune) rune {
				if r == '\r' || r == '\n' {
					return ' '
				}
				return r
			}, v)
		}
		line := h.fields[i].name + ": " + v + "\n"
		if sb.Len()+len(line) > MaxHeaderBytes {
			break
		}
		sb.WriteString(line)
	}
	return sb.String()
}

// ---- body part fields ----

func partFromHeader(h *header, digest bool) BodyPart {
	var bp BodyPart
	if v, ok := h.get("content-type"); ok {
		mt, params := parseParamValue(v)
		if typ, sub, ok := strings.Cut(mt, "/"); ok && isToken(typ) && isToken(sub) {
			bp.Type, bp.Subtype = typ, sub
		}
		bp.Params = params
	}
	if bp.Type == "" {
		// RFC 2045 §5.2, RFC 2046 §5.1.5: the defaults.
		if digest {
			bp.Type, bp.Subtype = "message", "rfc822"
		} else {
			bp.Type, bp.Subtype = "text", "plain"
			if bp.Params["charset"] == "" {
				if bp.Params == nil {
					bp.Params = map[string]string{}
				}
				bp.Params["charset"] = "us-ascii"
			}
		}
	}
	if v, ok := h.get("content-transfer-encoding"); ok {
		bp.Encoding = strings.Clone(strings.ToLower(firstToken(v)))
	}
	if v, ok := h.get("content-id"); ok {
		bp.ID = validUTF8(v)
	}
	if v, ok := h.get("content-description"); ok {
		bp.Description = decodeText(v)
	}
	if v, ok := h.get("content-md5"); ok {
		bp.MD5 = validUTF8(v)
	}
	if v, ok := h.get("content-disposition"); ok {
		d, params := parseParamValue(v)
		if isToken(d) {
			bp.Disposition, bp.DispositionParams = d, params
		}
	}
	if v, ok := h.get("content-language"); ok {
		for _, l := range strings.Split(v, ",") {
			if l = strings.TrimSpace(l); l != "" && len(bp.Language) < maxParams {
				bp.Language = append(bp.Language, validUTF8(l))
			}
		}
	}
	if v, ok := h.get("content-location"); ok {
		bp.Location = validUTF8(v)
	}
	return bp
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 127 || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

func firstToken(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t;("); i >= 0 {
		v = v[:i]
	}
	return v
}

type param2231 struct {
	idx int
	ext bool
	val string
}

// parseParamValue parses "value; a=b; c="d"" leniently (RFC 2045 §5.1, with
// RFC 2231 extended and continued parameters, and RFC 2047 words in values as
// many mailers send them). It returns the lower-cased value.
func parseParamValue(v string) (string, map[string]string) {
	head, rest, _ := strings.Cut(v, ";")
	head = strings.Clone(strings.ToLower(strings.Join(strings.Fields(stripComments(head)), "")))
	var params map[string]string
	var cont map[string][]param2231
	var bases []string // of cont, in order, so that the result is deterministic
	n := 0
	for rest != "" && n < maxParams*4 {
		var name, val string
		rest = strings.TrimLeft(rest, " \t;")
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 || rest[eq] == ';' {
			if eq < 0 {
				break
			}
			rest = rest[eq:]
			continue
		}
		name = strings.Clone(strings.ToLower(strings.TrimSpace(rest[:eq])))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		if strings.HasPrefix(rest, `"`) {
			val, rest = unquotePrefix(rest)
		} else {
			val, rest, _ = strings.Cut(rest, ";")
			val = strings.TrimSpace(val)
		}
		if name == "" {
			continue
		}
		n++
		if base, suffix, ok := strings.Cut(name, "*"); ok && base != "" {
			// RFC 2231 §3, §4: name*, name*N, name*N*
			ext := strings.HasSuffix(suffix, "*") || suffix == ""
			idx := 0
			if num := strings.TrimSuffix(suffix, "*"); num != "" {
				idx = atoiSmall(num)
				if idx < 0 {
					continue
				}
			}
			if cont == nil {
				cont = map[string][]param2231{}
			}
			if _, seen := cont[base]; !seen {
				bases = append(bases, base)
			}
			cont[base] = append(cont[base], param2231{idx, ext, val})
			continue
		}
		if params == nil {
			params = map[string]string{}
		}
		if _, dup := params[name]; !dup && len(params) < maxParams {
			params[name] = decodeParam(val)
		}
	}
	for _, base := range bases {
		if params == nil {
			params = map[string]string{}
		}
		if _, ok := params[base]; !ok && len(params) >= maxParams {
			continue
		}
		params[base] = join2231(cont[base]) // RFC 2231 wins over a plain value
	}
	return head, params
}

func atoiSmall(s string) int {
	if len(s) == 0 || len(s) > 3 {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func join2231(pieces []param2231) string {
	slices.SortStableFunc(pieces, func(a, b param2231) int { return a.idx - b.idx })
	cs := ""
	var buf []byte
	for i, p := range pieces {
		if p.idx != i {
			break // a gap or a duplicate ends the value
		}
		v := p.val
		if p.ext {
			if i == 0 {
				// charset'language'value
				if c, r, ok := strings.Cut(v, "'"); ok {
					if _, r2, ok := strings.Cut(r, "'"); ok {
						cs, v = c, r2
					}
				}
			}
			buf = appendPercentDecoded(buf, v)
		} else {
			buf = append(buf, v...)
		}
	}
	if cs == "" {
		return decodeParam(string(buf))
	}
	return charsetToUTF8(cs, buf)
}

func appendPercentDecoded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

func decodeParam(v string) string {
	if strings.Contains(v, "=?") {
		return decodeText(v)
	}
	return validUTF8(v)
}

// unquotePrefix reads the quoted-string at the start of s.
func unquotePrefix(s string) (string, string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// stripComments removes RFC 5322 comments outside quoted strings.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth == 0 && quoted:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '"' {
				quoted = false
			}
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		default:
			if c == '"' {
				quoted = true
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}
