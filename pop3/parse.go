package pop3

import (
	"strconv"
	"strings"
)

// Line limits, CRLF included.
const (
	// maxCommandLine is RFC 2449 §4's limit on a command line.
	maxCommandLine = 255
	// maxSASLLine bounds a SASL response line (RFC 5034 §4 puts no number
	// on it): room for PLAIN with the longest username and password auth
	// accepts (320 + 320 + 1024 octets, base64 encoded).
	maxSASLLine = 4096
	// maxDiscard bounds how much of a too-long line is skipped before the
	// connection is closed instead.
	maxDiscard = 64 << 10
)

// command is one parsed command line.
type command struct {
	name string   // keyword, upper case
	args []string // arguments split on spaces
	rest string   // the line after the keyword and one space (PASS may hold spaces)
}

// parseCommand parses a command line (RFC 1939 §3, RFC 2449 §4): a keyword
// of 3 or 4 letters, case-insensitive, then arguments separated by spaces,
// ending in CRLF (a bare LF is tolerated). Control characters are refused;
// octets above 0x7F are allowed in arguments (UTF-8 user names, passwords).
func parseCommand(line []byte) (*command, *Error) {
	if len(line) > maxCommandLine {
		return nil, errLineTooLong
	}
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
		if n > 0 && line[n-1] == '\r' {
			n--
		}
	}
	line = line[:n]
	for _, b := range line {
		if b < 0x20 || b == 0x7f {
			return nil, errSyntax
		}
	}
	kw, rest, _ := strings.Cut(string(line), " ")
	if len(kw) < 3 || len(kw) > 4 {
		if len(line) == 0 {
			return nil, misuse("empty command")
		}
		return nil, errUnknown
	}
	for i := 0; i < len(kw); i++ {
		c := kw[i] | 0x20
		if c < 'a' || c > 'z' {
			return nil, errUnknown
		}
	}
	cmd := &command{name: strings.ToUpper(kw), rest: rest}
	if rest != "" {
		cmd.args = strings.Split(rest, " ")
		for _, a := range cmd.args {
			if a == "" && cmd.name != "PASS" {
				return nil, errSyntax // RFC 1939 §3: a single space between arguments
			}
		}
	}
	return cmd, nil
}

// parseNumber reads a decimal number of at most 10 digits, without sign.
func parseNumber(s string) (int64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
