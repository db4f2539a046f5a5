// Package dovecot runs a private Dovecot (the Debian package) beside pombo
// in the benchmarks: a child process of the benchmark, so that its CPU time
// and memory can be read from /proc, with its own configuration and no
// system files.
//
// Everything lives under Options.Dir:
//
//	dovecot.conf   written by Start
//	passwd         passwd-file of Options.Users (passdb and userdb)
//	dovecot.log    Dovecot's log
//	run/           base_dir (sockets)
//	run/state/     state_dir
//
// It serves one protocol (IMAP or POP3) on a free 127.0.0.1 port, without
// SSL, with plaintext logins allowed; the mail settings (mail_location and
// the like) and the users are the caller's.
package dovecot

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// User is one line of the passwd-file.
type User struct {
	Name string
	// Password with its scheme: "{PLAIN}secret", "{ARGON2ID}$argon2id$...".
	Password string
	Home     string
}

// Options describe the instance to start.
type Options struct {
	// Bin is the dovecot binary; empty: "dovecot" on $PATH.
	Bin string
	// Dir holds the configuration, the run and state directories, the log
	// and the passwd-file (see the package comment).
	Dir string
	// Protocol is "imap" or "pop3".
	Protocol string
	// UID and GID are what the mail processes of every user run as
	// (Dovecot refuses root); the caller gives them the mail.
	UID, GID int
	Users    []User
	// Mail is configuration text put in as it is: mail_location and
	// whatever else the run needs, one setting a line.
	Mail string
}

// Server is a running Dovecot.
type Server struct {
	// Addr is where it listens for Options.Protocol.
	Addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the master has exited
	once sync.Once
}

// LookupUser gives the uid and gid of a system user, such as "dovecot".
func LookupUser(name string) (uid, gid int, err error) {
	u, err := osuser.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// ChownTree gives dir and what it holds to uid:gid, skipping what already
// belongs to them (a large Maildir is only chowned once).
func ChownTree(dir string, uid, gid int) error {
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

// Start writes the passwd-file and dovecot.conf, starts Dovecot in the
// foreground and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.Protocol != "imap" && o.Protocol != "pop3" {
		return nil, fmt.Errorf("dovecot: protocol %q, want imap or pop3", o.Protocol)
	}
	bin := o.Bin
	if bin == "" {
		bin = "dovecot"
	}
	bin, err := exec.LookPath(bin)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "run", "state"), 0o755); err != nil {
		return nil, err
	}
	// The auth process runs as the dovecot user, the sessions as o.UID:
	// they must reach their files through every directory above them.
	for d := o.Dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, fi.Mode().Perm()|0o005)
		}
	}
	var passwd strings.Builder
	for _, u := range o.Users {
		fmt.Fprintf(&passwd, "%s:%s:%d:%d::%s::\n", u.Name, u.Password, o.UID, o.GID, u.Home)
	}
	pw := filepath.Join(o.Dir, "passwd")
	if err := os.WriteFile(pw, []byte(passwd.String()), 0o644); err != nil {
		return nil, err
	}
	os.Chmod(pw, 0o644) // also when it was there with another mode
	cf := filepath.Join(o.Dir, "dovecot.conf")
	if err := os.WriteFile(cf, []byte(config(o, port)), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-F", "-c", cf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			c.Close()
			return s, nil
		}
		exited := false
		select {
		case <-s.done:
			exited = true
		default:
		}
		if exited || time.Now().After(deadline) {
			s.Stop()
			log, _ := os.ReadFile(filepath.Join(o.Dir, "dovecot.log"))
			return nil, errors.New("dovecot did not listen on " + s.Addr + "; its log:\n" + string(log))
		}
	}
}

// config is dovecot.conf: only what is written here, no conf.d.
func config(o Options, port int) string {
	return fmt.Sprintf(`# written by pombo's bench/internal/dovecot
base_dir = %[1]s/run
state_dir = %[1]s/run/state
log_path = %[1]s/dovecot.log
protocols = %[2]s
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = %[3]d
first_valid_gid = %[4]d
default_login_user = dovenull
default_internal_user = dovecot
%[5]spassdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/passwd
}
service %[2]s-login {
  inet_listener %[2]s {
    address = 127.0.0.1
    port = %[6]d
  }
  inet_listener %[2]ss {
    port = 0
  }
}
`, o.Dir, o.Protocol, o.UID, o.GID, o.Mail, port)
}

// PID is the master process: the sessions are its children.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop shuts Dovecot down (SIGTERM; SIGKILL after 10 s) and waits for the
// master to exit. It may be called more than once.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// freePort is a port on 127.0.0.1 that nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
