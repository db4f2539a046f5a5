package pop3

import (
	"errors"
	"strings"
)

// Response codes of RFC 2449 §8 and RFC 3206.
const (
	codeInUse   = "IN-USE"   // the maildrop is locked by another POP3 session
	codeSysTemp = "SYS/TEMP" // a temporary failure: try again later
	codeSysPerm = "SYS/PERM" // a permanent failure not caused by the client
	codeAuth    = "AUTH"     // the credentials (or the way they were sent) are refused
)

// Error is a negative reply. Text and Code go to the client; Err, the cause,
// only to the log. Never put err.Error() of an internal error in Text.
type Error struct {
	Code string // RFC 2449 response code, or ""
	Text string
	Err  error
	// Misuse marks a client mistake; it counts toward Options.MaxErrors.
	Misuse bool
	// Close ends the connection after the reply (without UPDATE).
	Close bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pop3: ")
	if e.Code != "" {
		b.WriteString("[" + e.Code + "] ")
	}
	b.WriteString(e.Text)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the same command may succeed later.
func (e *Error) Temporary() bool { return e.Code == codeSysTemp || e.Code == codeInUse }

// line is the reply as sent, without CRLF.
func (e *Error) line() string {
	if e.Code != "" {
		return "-ERR [" + e.Code + "] " + e.Text
	}
	return "-ERR " + e.Text
}

// misuse is a client mistake: a syntax error, a command in the wrong state,
// a bad message number.
func misuse(text string) *Error { return &Error{Text: text, Misuse: true} }

// temporary is a server-side failure; cause goes to the log.
func temporary(text string, cause error) *Error {
	return &Error{Code: codeSysTemp, Text: text, Err: cause}
}

// errTemporary reports whether err (any error) is worth retrying: an *Error
// says so itself, and an unknown error is temporary.
func errTemporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		return t.Temporary()
	}
	return true
}

var (
	errSyntax       = misuse("syntax error")
	errUnknown      = misuse("unknown command")
	errWrongState   = misuse("command not valid in this state")
	errLineTooLong  = misuse("line too long")
	errNoSuchMsg    = misuse("no such message")
	errMsgDeleted   = misuse("message already deleted")
	errPlaintext    = &Error{Code: codeAuth, Text: "plaintext authentication needs TLS: use STLS or port 995", Misuse: true}
	errAuthFailed   = &Error{Code: codeAuth, Text: "authentication failed", Misuse: true}
	errThrottled    = &Error{Code: codeSysTemp, Text: "too many failed logins, try again later", Misuse: true}
	errAuthMalform  = &Error{Code: codeAuth, Text: "malformed authentication response", Misuse: true}
	errInUse        = &Error{Code: codeInUse, Text: "maildrop already locked by another POP3 session"}
	errInternal     = temporary("internal server error", nil)
	errTooManyBytes = &Error{Text: "line too long", Misuse: true, Close: true}
)
