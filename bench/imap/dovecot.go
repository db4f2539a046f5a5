package main

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// dovecotServer is a private Dovecot instance: its own base_dir, a
// passwd-file with a plain password, one Maildir, plaintext LOGIN on
// 127.0.0.1 and no SSL. Each IMAP session is its own "imap" process, a
// child of the master; its CPU time and RSS are what we compare.
type dovecotServer struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

func startDovecot(dir string) (*dovecotServer, error) {
	for _, d := range []string{filepath.Join(dir, "run"), filepath.Join(dir, "home")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Dovecot refuses to serve mail as root: the session runs as the
	// dovecot user, which gets the Maildir.
	uid, gid, err := dovecotUser()
	if err != nil {
		return nil, err
	}
	if err := chownTree(dir, uid, gid); err != nil {
		return nil, err
	}
	passwd := fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s::\n", user, pass, uid, gid, filepath.Join(dir, "home"))
	return launchDovecot(dir, uid, gid, passwd, "mail_location = maildir:"+dir+"/Maildir\n")
}

// launchDovecot writes passwd (passwd-file lines) and dovecot.conf under
// dir, with the settings every run shares plus mail (the mail_location and
// whatever else the run needs), starts Dovecot and waits for it to listen.
func launchDovecot(dir string, uid, gid int, passwd, mail string) (*dovecotServer, error) {
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
	// The auth process runs as the dovecot user: it must reach the file.
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd), 0o644); err != nil {
		return nil, err
	}
	os.Chmod(filepath.Join(dir, "passwd"), 0o644)
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, fi.Mode().Perm()|0o005)
		}
	}
	conf := fmt.Sprintf(`# written by bench/imap
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
%[6]spassdb {
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
`, run, dir, uid, gid, port, mail)
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

// sessionPIDs are the imap processes serving sessions (there is one: ours).
func (d *dovecotServer) sessionPIDs() []int {
	return children(d.cmd.Process.Pid, "imap", "indexer-worker")
}

func (d *dovecotServer) stop() {
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

func dovecotUser() (int, int, error) {
	u, err := osuser.Lookup("dovecot")
	if err != nil {
		return 0, 0, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// chownTree gives dir and what it holds to uid:gid, skipping what already
// belongs to them (the Maildir is only chowned once).
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if fi, err := e.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
				return nil
			}
		}
		return os.Lchown(p, uid, gid)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
