package pop3

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		line string
		name string
		args []string
		rest string
		err  *Error
	}{
		{line: "STAT\r\n", name: "STAT"},
		{line: "stat\n", name: "STAT"},
		{line: "ReTr 12\r\n", name: "RETR", args: []string{"12"}, rest: "12"},
		{line: "TOP 1 10\r\n", name: "TOP", args: []string{"1", "10"}, rest: "1 10"},
		{line: "PASS with  two spaces \r\n", name: "PASS", args: []string{"with", "", "two", "spaces", ""}, rest: "with  two spaces "},
		{line: "USER j\xc3\xbcrgen@example.test\r\n", name: "USER", args: []string{"j\xc3\xbcrgen@example.test"}, rest: "j\xc3\xbcrgen@example.test"},
		{line: "\r\n", err: misuse("empty command")},
		{line: "ST\r\n", err: errUnknown},
		{line: "STATS\r\n", err: errUnknown},
		{line: "ST4T\r\n", err: errUnknown},
		{line: " STAT\r\n", err: errUnknown},
		{line: "LIST  1\r\n", err: errSyntax},
		{line: "LIST 1 \r\n", err: errSyntax},
		{line: "USER a\x00b\r\n", err: errSyntax},
		{line: "USER a\rb\r\n", err: errSyntax},
		{line: "USER a\x7f\r\n", err: errSyntax},
		{line: "USER " + strings.Repeat("a", 250) + "\r\n", err: errLineTooLong},
		{line: "USER " + strings.Repeat("a", 248) + "\r\n", name: "USER", args: []string{strings.Repeat("a", 248)}, rest: strings.Repeat("a", 248)},
	} {
		cmd, err := parseCommand([]byte(tc.line))
		if tc.err != nil {
			if err == nil || err.Text != tc.err.Text {
				t.Errorf("%q: error %v, want %v", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if cmd.name != tc.name || cmd.rest != tc.rest || strings.Join(cmd.args, "|") != strings.Join(tc.args, "|") || len(cmd.args) != len(tc.args) {
			t.Errorf("%q: got %+v", tc.line, cmd)
		}
	}
}

func TestParseNumber(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "1": 1, "007": 7, "9999999999": 9999999999} {
		if n, ok := parseNumber(s); !ok || n != want {
			t.Errorf("%q: %d %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-1", "+1", "1x", " 1", "12345678901", "1e3", "0x10"} {
		if n, ok := parseNumber(s); ok {
			t.Errorf("%q: accepted as %d", s, n)
		}
	}
}

// FuzzParseCommand: any input gives a command or a typed error, never a
// panic; a command holds no control characters, a known-shape keyword, and
// its arguments rebuild the line.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"STAT\r\n", "LIST 1\r\n", "TOP 1 0\r\n", "PASS a b c\r\n", "AUTH PLAIN AGFsaWNlAHB3\r\n",
		"USER alice@example.test\n", "\r\n", "RETR\x00 1\r\n", "UIDL  2\r\n", "capa\r\n",
		"QUIT", "STLS\r\nUSER x\r\n", strings.Repeat("X", 300), "RETR 99999999999\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := parseCommand(line)
		if err != nil {
			if cmd != nil || err.line() == "" || !strings.HasPrefix(err.line(), "-ERR ") {
				t.Fatalf("%q: bad error %#v", line, err)
			}
			return
		}
		if len(line) > maxCommandLine {
			t.Fatalf("%q: accepted past the line limit", line)
		}
		if n := len(cmd.name); n < 3 || n > 4 || strings.ToUpper(cmd.name) != cmd.name {
			t.Fatalf("%q: keyword %q", line, cmd.name)
		}
		for _, r := range []byte(cmd.rest) {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("%q: control character in %q", line, cmd.rest)
			}
		}
		if strings.Join(cmd.args, " ") != cmd.rest {
			t.Fatalf("%q: args %q do not rebuild %q", line, cmd.args, cmd.rest)
		}
	})
}
