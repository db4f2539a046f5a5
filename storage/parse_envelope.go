package storage

import (
	"net/mail"
	"strings"
	"time"
)

// ---- envelope ----

func envelopeOf(h *header) Envelope {
	var e Envelope
	if v, ok := h.get("date"); ok {
		e.Date = parseDate(v)
	}
	if v, ok := h.get("subject"); ok {
		e.Subject = decodeText(v)
	}
	e.From = h.addresses("from")
	e.Sender = h.addresses("sender")
	e.ReplyTo = h.addresses("reply-to")
	e.To = h.addresses("to")
	e.Cc = h.addresses("cc")
	e.Bcc = h.addresses("bcc")
	// RFC 3501 §7.4.2: absent or empty Sender and Reply-To take From.
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	if v, ok := h.get("in-reply-to"); ok {
		e.InReplyTo = msgIDs(v, maxMsgIDs)
	}
	if v, ok := h.get("message-id"); ok {
		if ids := msgIDs(v, 1); len(ids) > 0 {
			e.MessageID = ids[0]
		}
	}
	return e
}

// addresses parses every kept field called name into one list (several To
// fields are merged, as Dovecot does), at most MaxAddresses long.
func (h *header) addresses(name string) []Address {
	var out []Address
	for i := range h.fields {
		if h.fields[i].name == name && len(out) < MaxAddresses {
			out = appendAddressList(out, h.value(i), MaxAddresses)
		}
	}
	return out
}

// msgIDs returns up to max msg-ids of v without their angle brackets; a
// value without brackets counts as one id if it is a single word.
func msgIDs(v string, max int) []string {
	var ids []string
	rest := v
	for len(ids) < max {
		lt := strings.IndexByte(rest, '<')
		if lt < 0 {
			break
		}
		gt := strings.IndexByte(rest[lt:], '>')
		if gt < 0 {
			break
		}
		if id := strings.Join(strings.Fields(rest[lt+1:lt+gt]), ""); id != "" {
			ids = append(ids, validUTF8(id))
		}
		rest = rest[lt+gt+1:]
	}
	if len(ids) == 0 {
		if f := strings.Fields(v); len(f) == 1 && f[0] != "<>" {
			ids = append(ids, validUTF8(strings.Trim(f[0], "<>")))
		}
	}
	return ids
}

var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon, 2 January 2006 15:04:05 -0700",
	"Monday, 2 Jan 2006 15:04:05 -0700",
	"Monday, January 2, 2006 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",
	"2 Jan 2006",
}

// parseDate parses a Date field with net/mail and lenient fallbacks; the
// zero time if nothing fits. Times JSON cannot carry are normalized.
func parseDate(v string) time.Time {
	if len(v) > 200 {
		v = v[:200]
	}
	t, err := time.Parse(dateLayouts[0], v) // the common form, without net/mail's failed tries
	if err != nil {
		t, err = mail.ParseDate(v)
	}
	if err != nil {
		s := strings.Join(strings.Fields(stripComments(v)), " ")
		s = strings.ReplaceAll(s, " ,", ",")
		for tries := 0; tries < 3 && s != "" && err != nil; tries++ {
			for _, l := range dateLayouts {
				if t, err = time.Parse(l, s); err == nil {
					break
				}
			}
			if i := strings.LastIndexByte(s, ' '); i >= 0 {
				s = s[:i] // drop trailing junk, e.g. "+0000 GMT"
			} else {
				s = ""
			}
		}
		if err != nil {
			return time.Time{}
		}
	}
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		t = t.UTC()
	}
	return t
}

// appendAddressList parses an address list leniently (RFC 5322 §3.4) and
// appends to out until it holds max addresses. Groups are flattened; a
// piece that is not an address becomes {Mailbox: raw}; it runs in time
// linear in len(v).
func appendAddressList(out []Address, v string, max int) []Address {
	start, paren := 0, 0
	quoted, angle := false, false
	for i := 0; i < len(v) && len(out) < max; i++ {
		c := v[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case paren > 0:
			if c == '\\' {
				i++
			} else if c == '(' {
				paren++
			} else if c == ')' {
				paren--
			}
		case c == '"':
			quoted = true
		case c == '(':
			paren++
		case angle:
			if c == '>' {
				angle = false
			}
		case c == '<':
			angle = true
		case c == ',' || c == ';':
			out = appendAddress(out, v[start:i])
			start = i + 1
		case c == ':': // "group-name:" — flattened
			start = i + 1
		}
	}
	if len(out) < max && start < len(v) {
		out = appendAddress(out, v[start:])
	}
	return out
}

func appendAddress(out []Address, s string) []Address {
	s = strings.TrimSpace(s)
	if s == "" {
		return out
	}
	var a Address
	display, spec, hasAngle, comment := splitAddress(s)
	if hasAngle {
		a.Name = phrase(display)
		if a.Name == "" {
			a.Name = phrase(comment)
		}
	} else if strings.Contains(spec, "@") {
		a.Name = phrase(comment)
	} else {
		return append(out, Address{Mailbox: validUTF8(strings.Join(strings.Fields(s), " "))})
	}
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "@") { // obsolete route: @a,@b:user@host
		if _, r, ok := strings.Cut(spec, ":"); ok {
			spec = r
		}
	}
	if at := lastAt(spec); at >= 0 {
		a.Mailbox, a.Host = localPart(spec[:at]), strings.Join(strings.Fields(spec[at+1:]), "")
	} else {
		a.Mailbox = localPart(spec)
	}
	a.Mailbox, a.Host = validUTF8(a.Mailbox), validUTF8(a.Host)
	if a.Mailbox == "" && a.Host == "" && a.Name == "" {
		return out
	}
	return append(out, a)
}

// splitAddress separates "display <spec>" (or a bare spec) and collects
// comment text outside quotes.
func splitAddress(s string) (display, spec string, hasAngle bool, comment string) {
	var disp, sp, com strings.Builder
	paren, quoted, inAngle := 0, false, false
	cur := &sp
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			cur.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else if c == '"' {
				quoted = false
			}
		case paren > 0:
			if c == '\\' && i+1 < len(s) {
				i++
				com.WriteByte(s[i])
			} else if c == '(' {
				paren++
			} else if c == ')' {
				paren--
				if paren == 0 {
					com.WriteByte(' ')
				}
			} else {
				com.WriteByte(c)
			}
		case c == '(':
			paren++
		case c == '"':
			quoted = true
			cur.WriteByte(c)
		case c == '<' && !hasAngle:
			hasAngle, inAngle = true, true
			disp.WriteString(sp.String())
			sp.Reset()
		case c == '>' && inAngle:
			inAngle = false
			cur = new(strings.Builder) // text after '>' is ignored
		default:
			cur.WriteByte(c)
		}
	}
	return disp.String(), sp.String(), hasAngle, com.String()
}

func lastAt(spec string) int {
	quoted := false
	at := -1
	for i := 0; i < len(spec); i++ {
		switch spec[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case '@':
			if !quoted {
				at = i
			}
		}
	}
	return at
}

// localPart removes whitespace and the quotes of a quoted local part.
func localPart(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		v, _ := unquotePrefix(s)
		return v
	}
	return strings.Join(strings.Fields(s), "")
}

// phrase turns a display name into text: quotes removed, white space
// collapsed, RFC 2047 words decoded.
func phrase(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '"' {
			b.WriteByte(c)
			continue
		}
		v, rest := unquotePrefix(s[i:])
		b.WriteString(v)
		i = len(s) - len(rest) - 1
	}
	return decodeText(strings.Join(strings.Fields(b.String()), " "))
}
