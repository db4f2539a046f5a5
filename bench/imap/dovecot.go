package main

import (
	"os"
	"path/filepath"

	"pombo/bench/internal/dovecot"
)

// startDovecot starts a private Dovecot on the one Maildir of dir: a
// passwd-file user with a plain password, plaintext LOGIN on 127.0.0.1.
// Each IMAP session is its own "imap" process, a child of the master; its
// CPU time and RSS are what we compare.
func startDovecot(dir string) (*dovecot.Server, error) {
	for _, d := range []string{filepath.Join(dir, "run"), filepath.Join(dir, "home")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Dovecot refuses to serve mail as root: the session runs as the
	// dovecot user, which gets the Maildir.
	uid, gid, err := dovecot.LookupUser("dovecot")
	if err != nil {
		return nil, err
	}
	if err := dovecot.ChownTree(dir, uid, gid); err != nil {
		return nil, err
	}
	return launchDovecot(dovecot.Options{
		Dir: dir, UID: uid, GID: gid,
		Users: []dovecot.User{{Name: user, Password: "{PLAIN}" + pass, Home: filepath.Join(dir, "home")}},
		Mail:  "mail_location = maildir:" + dir + "/Maildir\n",
	})
}

// launchDovecot starts Dovecot for IMAP; a fatal error stops it.
func launchDovecot(o dovecot.Options) (*dovecot.Server, error) {
	o.Protocol = "imap"
	d, err := dovecot.Start(o)
	if err != nil {
		return nil, err
	}
	atFatal = append(atFatal, d.Stop)
	return d, nil
}
