package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// startDovecotMixed starts a private Dovecot for the mixed workload: one
// passwd-file user per account, each with its own home and Maildir, the
// special-use folders pombo creates, "/" as separator (as pombo), and
// mail_fsync as given (Dovecot's default is "optimized").
func startDovecotMixed(dir string, accounts int, fsync string) (*dovecotServer, error) {
	uid, gid, err := dovecotUser()
	if err != nil {
		return nil, err
	}
	if err := chownTree(filepath.Join(dir, "home"), uid, gid); err != nil {
		return nil, err
	}
	var passwd strings.Builder
	for a := 0; a < accounts; a++ {
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s:%d:%d::%s::\n", mixedUser(a), pass, uid, gid, filepath.Dir(maildirOf(dir, a, "INBOX")))
	}
	var mail strings.Builder
	fmt.Fprintf(&mail, "mail_location = maildir:~/Maildir\nmail_fsync = %s\nnamespace inbox {\n  inbox = yes\n  separator = /\n", fsync)
	for _, mf := range mixedFolders[1:] {
		fmt.Fprintf(&mail, "  mailbox %s {\n    special_use = \\%s\n  }\n", mf.name, mf.name)
	}
	mail.WriteString("}\n")
	return launchDovecot(dir, uid, gid, passwd.String(), mail.String())
}
