package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// startDovecotMixed starts a private Dovecot for the mixed workload: one
// passwd-file user per account, each with its own home and Maildir, the
// special-use folders pombo creates, "/" as separator (as pombo), and
// mail_fsync as given (Dovecot's default is "optimized").
func startDovecotMixed(dir string, accounts int, fsync string) (*dovecotServer, error) {
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(filepath.Join(run, "state"), 0o755); err != nil {
		return nil, err
	}
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
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd.String()), 0o644); err != nil {
		return nil, err
	}
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, fi.Mode().Perm()|0o005)
		}
	}
	var special strings.Builder
	for _, mf := range mixedFolders[1:] {
		fmt.Fprintf(&special, "  mailbox %s {\n    special_use = \\%s\n  }\n", mf.name, mf.name)
	}
	conf := fmt.Sprintf(`# written by bench/imap -mixed
base_dir = %[1]s
state_dir = %[1]s/state
log_path = %[2]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = %[3]d
first_valid_gid = %[4]d
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:~/Maildir
mail_fsync = %[6]s
namespace inbox {
  inbox = yes
  separator = /
%[7]s}
passdb {
  driver = passwd-file
  args = username_format=%%u %[2]s/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[2]s/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[5]d
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = 0
  }
}
`, run, dir, uid, gid, port, fsync, special.String())
	cf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-F", "-c", cf)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	atFatal = append(atFatal, func() { cmd.Process.Kill() })
	d := &dovecotServer{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.Dial("tcp", d.addr)
		if err == nil {
			c.Close()
			return d, nil
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("dovecot did not listen on %s (see %s/dovecot.log)", d.addr, dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
