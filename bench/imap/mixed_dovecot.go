package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"pombo/bench/internal/dovecot"
)

// startDovecotMixed starts a private Dovecot for the mixed workload: one
// passwd-file user per account, each with its own home and Maildir, the
// special-use folders pombo creates, "/" as separator (as pombo), and
// mail_fsync as given (Dovecot's default is "optimized").
func startDovecotMixed(dir string, accounts int, fsync string) (*dovecot.Server, error) {
	uid, gid, err := dovecot.LookupUser("dovecot")
	if err != nil {
		return nil, err
	}
	if err := dovecot.ChownTree(filepath.Join(dir, "home"), uid, gid); err != nil {
		return nil, err
	}
	users := make([]dovecot.User, accounts)
	for a := range users {
		users[a] = dovecot.User{Name: mixedUser(a), Password: "{PLAIN}" + pass, Home: filepath.Dir(maildirOf(dir, a, "INBOX"))}
	}
	var mail strings.Builder
	fmt.Fprintf(&mail, "mail_location = maildir:~/Maildir\nmail_fsync = %s\nnamespace inbox {\n  inbox = yes\n  separator = /\n", fsync)
	for _, mf := range mixedFolders[1:] {
		fmt.Fprintf(&mail, "  mailbox %s {\n    special_use = \\%s\n  }\n", mf.name, mf.name)
	}
	mail.WriteString("}\n")
	return launchDovecot(dovecot.Options{Dir: dir, UID: uid, GID: gid, Users: users, Mail: mail.String()})
}
