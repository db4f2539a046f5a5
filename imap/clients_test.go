package imap_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"

	"pombo/storage"
	"pombo/testutil"
)

const imaplibScript = `
import imaplib, sys, time
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
M = imaplib.IMAP4(host, port)
def ok(r, what):
    if r[0] != 'OK':
        print("FAIL", what, r); sys.exit(1)
    return r[1]
caps = ok(M.capability(), 'capability')[0].decode()
assert 'IMAP4rev1' in caps, caps
ok(M.login(user, pw), 'login')
ok(M.create('Py/Sub'), 'create')
names = [l.decode() for l in ok(M.list('""', '*'), 'list')]
assert any('"Py/Sub"' in n or ' Py/Sub' in n for n in names), names
msg = b"From: a@example.org\r\nSubject: from python\r\n\r\nhello imaplib\r\n"
ok(M.append('INBOX', r'(\Flagged)', imaplib.Time2Internaldate(time.time()), msg), 'append')
n = int(ok(M.select('INBOX'), 'select')[0])
assert n == 1, n
data = ok(M.fetch('1', '(FLAGS RFC822.SIZE BODY.PEEK[])'), 'fetch')
assert data[0][1] == msg, data
assert b'\\Flagged' in data[0][0] and b'\\Seen' not in data[0][0], data[0][0]
ok(M.store('1', '+FLAGS', r'(\Seen $Custom)'), 'store')
data = ok(M.fetch('1', '(FLAGS)'), 'fetch flags')
assert b'$Custom' in data[0] and b'\\Seen' in data[0], data
assert ok(M.search(None, 'SUBJECT', '"from python"'), 'search')[0] == b'1'
assert ok(M.search(None, 'BODY', 'IMAPLIB'), 'search body')[0] == b'1'
assert ok(M.search(None, 'NOT', 'SEEN'), 'search unseen')[0] == b''
typ, d = M.uid('SEARCH', None, 'ALL'); assert d[0] == b'1', d
ok(M.copy('1', 'Py/Sub'), 'copy')
st = ok(M.status('Py/Sub', '(MESSAGES UIDNEXT)'), 'status')[0]
assert b'MESSAGES 1' in st, st
ok(M.store('1', '+FLAGS', r'\Deleted'), 'delete')
exp = ok(M.expunge(), 'expunge')
assert exp == [b'1'], exp
ok(M.rename('Py', 'Snake'), 'rename')
ok(M.delete('Snake/Sub'), 'delete mailbox')
ok(M.logout(), 'logout') if False else M.logout()
print("OK")
`

func TestPythonImaplib(t *testing.T) {
	py := testutil.RequireTool(t, "python3")
	e := start(t, nil)
	host, port, _ := strings.Cut(e.addr, ":")
	out, err := exec.Command(py, "-c", imaplibScript, host, port, testUser, testPass).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}

// readMbox splits the corpus mbox (fixed From_ lines) into messages.
func readMbox(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sep := []byte("From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n")
	var out [][]byte
	for _, part := range bytes.Split(data, sep) {
		if len(bytes.TrimSpace(part)) > 0 {
			out = append(out, bytes.TrimSuffix(part, []byte("\n")))
		}
	}
	return out
}

func corpus(t testing.TB, count int) [][]byte {
	t.Helper()
	py := testutil.RequireTool(t, "python3")
	path := filepath.Join(t.TempDir(), "corpus.mbox")
	out, err := exec.Command(py, "/work/shared/corpus/make_corpus.py", "--count", strconv.Itoa(count), "--out", path).CombinedOutput()
	if err != nil {
		t.Fatalf("make_corpus: %v\n%s", err, out)
	}
	return readMbox(t, path)
}

// deliverAll stores messages with 32 concurrent deliveries (group commit).
func deliverAll(t testing.TB, st *storage.Store, userID int64, mailbox string, msgs [][]byte) {
	t.Helper()
	var wg sync.WaitGroup
	ch := make(chan []byte)
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range ch {
				if _, err := st.Deliver(context.Background(), bytes.NewReader(m),
					[]storage.Recipient{{UserID: userID, Mailbox: mailbox}}, storage.DeliverOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, m := range msgs {
		ch <- m
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// mbsyncTraffic counts, in mbsync's network trace, the message bodies it
// fetched, the messages it uploaded and the flag changes it sent.
var (
	mbsyncFetch  = regexp.MustCompile(`>>> .*FETCH .*BODY\.PEEK\[\]`)
	mbsyncAppend = regexp.MustCompile(`>>> .*APPEND `)
	mbsyncStore  = regexp.MustCompile(`>>> .*STORE `)
)

func TestMbsync(t *testing.T) {
	mbsync := testutil.RequireTool(t, "mbsync")
	// The account size; about 40 s with -race on 2 CPUs.
	// POMBO_MBSYNC_COUNT makes it smaller for quick local runs.
	count := 2000
	if v, err := strconv.Atoi(os.Getenv("POMBO_MBSYNC_COUNT")); err == nil {
		count = v
	}
	msgs := corpus(t, count)
	e := start(t, nil)
	deliverAll(t, e.srv.Store, e.userID, "INBOX", msgs)
	ctx := context.Background()
	if err := e.srv.Store.CreateMailbox(ctx, e.userID, "Lists/go-nuts", ""); err != nil {
		t.Fatal(err)
	}
	deliverAll(t, e.srv.Store, e.userID, "Lists/go-nuts", msgs[:10])

	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	os.MkdirAll(maildir, 0o700)
	host, port, _ := strings.Cut(e.addr, ":")
	conf := fmt.Sprintf(`IMAPAccount pombo
Host %s
Port %s
User %s
Pass "%s"
SSLType None
AuthMechs LOGIN
PipelineDepth 50

IMAPStore remote
Account pombo

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
Sync All
SyncState *
`, host, port, testUser, testPass, maildir, maildir)
	confPath := filepath.Join(dir, "mbsyncrc")
	os.WriteFile(confPath, []byte(conf), 0o600)
	type traffic struct{ fetch, appends, stores int }
	sync := func(name string) traffic {
		t.Helper()
		out, err := exec.Command(mbsync, "-Dn", "-c", confPath, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: mbsync: %v\n%s", name, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(strings.ToLower(l), "error") && !strings.HasPrefix(l, "<") && !strings.HasPrefix(l, ">") {
				t.Errorf("%s: mbsync: %s", name, l)
			}
		}
		if os.Getenv("POMBO_MBSYNC_DEBUG") != "" {
			os.WriteFile("/tmp/mbsync-"+name+".log", out, 0o644)
		}
		return traffic{len(mbsyncFetch.FindAll(out, -1)), len(mbsyncAppend.FindAll(out, -1)), len(mbsyncStore.FindAll(out, -1))}
	}
	files := func(box string) []string {
		var out []string
		for _, sub := range []string{"cur", "new"} {
			ents, _ := os.ReadDir(filepath.Join(maildir, box, sub))
			for _, e := range ents {
				out = append(out, filepath.Join(maildir, box, sub, e.Name()))
			}
		}
		return out
	}

	// 1. Down: every message arrives byte for byte (CRLF→LF by mbsync),
	// except those without a header/body separator, which mbsync skips
	// with a warning.
	headerless := 0
	for _, m := range msgs {
		if !bytes.Contains(m, []byte("\n\n")) {
			headerless++
		}
	}
	tr := sync("first")
	if tr.fetch < count+10 {
		t.Errorf("first sync fetched %d bodies, want %d", tr.fetch, count+10)
	}
	got := files("INBOX")
	if len(got) != count-headerless {
		t.Fatalf("INBOX has %d files, want %d", len(got), count-headerless)
	}
	if n := len(files("Lists/go-nuts")); n != 10 {
		t.Errorf("Lists/go-nuts has %d files", n)
	}
	want := map[string]bool{}
	for _, m := range msgs {
		want[string(bytes.ReplaceAll(m, []byte("\r\n"), []byte("\n")))] = true
	}
	for _, f := range got[:20] {
		b, _ := os.ReadFile(f)
		b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		// mbsync 1.4 adds an X-TUID field to the header it stores.
		b = regexp.MustCompile(`(?m)^X-TUID: \S+\n`).ReplaceAll(b, nil)
		if !want[string(b)] {
			if os.Getenv("POMBO_MBSYNC_DEBUG") != "" {
				os.WriteFile("/tmp/mbsync-mismatch.eml", b, 0o644)
			}
			t.Errorf("%s does not match any corpus message", f)
		}
	}

	// 2. Flags both ways, and a new local message goes up.
	mb, _ := e.srv.Store.MailboxByName(ctx, e.userID, "INBOX")
	if _, err := e.srv.Store.SetFlags(ctx, mb.ID, []uint32{1, 2}, storage.FlagsAdd, storage.FlagFlagged, nil); err != nil {
		t.Fatal(err)
	}
	local := got[len(got)-1]
	seenName := local
	if !strings.Contains(filepath.Base(local), ":2,") {
		seenName = filepath.Join(maildir, "INBOX", "cur", filepath.Base(local)+":2,S")
	} else {
		seenName = strings.Replace(filepath.Join(maildir, "INBOX", "cur", filepath.Base(local)), ":2,", ":2,S", 1)
	}
	if err := os.Rename(local, seenName); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(maildir, "INBOX", "new", "1700000000.local1.host"),
		[]byte("From: me@example.test\nSubject: written offline\nMessage-ID: <offline@x>\n\nup it goes\n"), 0o600)
	tr = sync("second")
	if tr.appends != 1 || tr.stores != 1 || tr.fetch != 0 {
		t.Errorf("second sync: %+v, want 1 APPEND, 1 STORE, no body fetched", tr)
	}
	flagged := 0
	for _, f := range files("INBOX") {
		if i := strings.Index(f, ":2,"); i >= 0 && strings.Contains(f[i:], "F") {
			flagged++
		}
	}
	if flagged != 2 {
		t.Errorf("%d local messages flagged, want 2", flagged)
	}
	c := e.client(t, nil)
	selectBox(t, c, "INBOX")
	d, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil || len(d.AllUIDs()) != 1 {
		t.Errorf("server \\Seen after sync: %v %v", d, err)
	}
	d, _ = c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "written offline"}}}, nil).Wait()
	if len(d.AllUIDs()) != 1 {
		t.Errorf("uploaded message not on the server: %v", d.AllUIDs())
	}
	c.Logout().Wait()

	// 3. Nothing changed: nothing moves.
	tr = sync("third")
	if tr != (traffic{}) {
		t.Errorf("sync without changes moved something: %+v", tr)
	}
}
