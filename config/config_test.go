package config

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	if c.Hostname == "" {
		t.Error("empty default hostname")
	}
	if c.DataDir != "./pombo-data" {
		t.Errorf("data_dir = %q", c.DataDir)
	}
	wantAddrs := []string{
		"smtp.listen 127.0.0.1:2525",
		"submission.listen 127.0.0.1:2587",
		"submission.tls_listen 127.0.0.1:2465",
		"imap.listen 127.0.0.1:2143",
		"imap.tls_listen 127.0.0.1:2993",
		"pop3.listen 127.0.0.1:2110",
		"pop3.tls_listen 127.0.0.1:2995",
		"http.listen 127.0.0.1:8080",
	}
	var got []string
	for _, a := range c.ListenAddrs() {
		got = append(got, a.Key+" "+a.Addr)
		if a.ImplicitTLS != strings.HasSuffix(a.Key, ".tls_listen") {
			t.Errorf("%s: ImplicitTLS = %v", a.Key, a.ImplicitTLS)
		}
	}
	if !reflect.DeepEqual(got, wantAddrs) {
		t.Errorf("ListenAddrs() = %q, want %q", got, wantAddrs)
	}
	l := c.Limits
	if l.MaxMessageSize != 50<<20 || l.MaxConnections != 1000 || l.MaxConnectionsPerIP != 20 ||
		l.MaxRecipients != 100 || l.MaxErrors != 10 || l.MaxLineLength != 1000 ||
		l.CommandTimeout.Duration() != 5*time.Minute || l.DataTimeout.Duration() != 10*time.Minute ||
		l.IMAPIdleTimeout.Duration() != 30*time.Minute || l.POP3IdleTimeout.Duration() != 10*time.Minute ||
		l.IMAPLoginTimeout.Duration() != time.Minute || l.IMAPAutologout.Duration() != 30*time.Minute {
		t.Errorf("limits = %+v", l)
	}
	a := c.Auth
	if !a.AllowPlaintextFromLoopback || a.MaxFailuresPerIP != 10 || a.MaxFailuresPerAccount != 5 ||
		a.FailureWindow.Duration() != 15*time.Minute {
		t.Errorf("auth = %+v", a)
	}
	if c.Submission.MaxMessagesPerHour != 200 || c.Submission.MaxRecipientsPerMessage != 50 {
		t.Errorf("submission = %+v", c.Submission)
	}
	q := c.Queue
	if q.RetryInitial.Duration() != 5*time.Minute || q.RetryMax.Duration() != 4*time.Hour ||
		q.GiveUpAfter.Duration() != 120*time.Hour || q.Workers != 4 {
		t.Errorf("queue = %+v", q)
	}
	if c.Relay != (Relay{Port: 587, TLS: "starttls"}) {
		t.Errorf("relay = %+v", c.Relay)
	}
	if c.Log.Level != "info" || c.UserDefaults.Quota != 0 || c.DNS.Resolver != "" || c.TLS != (TLS{}) {
		t.Errorf("log/user_defaults/dns/tls = %+v %+v %+v %+v", c.Log, c.UserDefaults, c.DNS, c.TLS)
	}

	// An empty file is the defaults.
	p, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, Default()) {
		t.Errorf("Parse(empty) = %+v, want Default()", p)
	}
}

func TestExample(t *testing.T) {
	c, err := Load("../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "mail.example.org" || c.DataDir != "/var/lib/pombo" {
		t.Errorf("hostname, data_dir = %q, %q", c.Hostname, c.DataDir)
	}
	want := map[string][]string{
		"smtp.listen":           {":25"},
		"submission.listen":     {":587"},
		"submission.tls_listen": {":465"},
		"imap.listen":           {":143"},
		"imap.tls_listen":       {":993"},
		"pop3.listen":           {":110"},
		"pop3.tls_listen":       {":995"},
		"http.listen":           {":80"},
	}
	got := map[string][]string{}
	for _, a := range c.ListenAddrs() {
		got[a.Key] = append(got[a.Key], a.Addr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listen addresses = %q, want %q", got, want)
	}
	if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
		t.Errorf("tls = %+v", c.TLS)
	}
	if c.Limits.MaxMessageSize != 50<<20 || c.Limits.CommandTimeout.Duration() != 5*time.Minute ||
		c.Limits.IMAPLoginTimeout.Duration() != time.Minute || c.Limits.IMAPAutologout.Duration() != 30*time.Minute ||
		c.Queue.GiveUpAfter.Duration() != 120*time.Hour || c.Relay.TLS != RelayTLSStartTLS ||
		c.Relay.Host != "" || c.Log.Level != "info" || c.UserDefaults.Quota != 0 {
		t.Errorf("unexpected values: %+v", c)
	}
}

// TestExampleDocumentsEveryKey keeps config.toml.example complete: every key
// of Config is present, each with a comment line right above it.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	for _, k := range md.Keys() {
		inFile[k.String()] = true
	}
	var missing []string
	for _, k := range structKeys(reflect.TypeOf(Config{}), "") {
		if !inFile[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("config.toml.example lacks keys %q", missing)
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		if k, rest, ok := scanKey(line); ok && strings.HasPrefix(rest, "=") {
			if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
				t.Errorf("config.toml.example:%d: key %q has no comment above it", i+1, k.String())
			}
		}
	}
}

func structKeys(rt reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		k := prefix + f.Tag.Get("toml")
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, structKeys(f.Type, k+".")...)
		} else {
			keys = append(keys, k)
		}
	}
	return keys
}

func TestBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // every string must be in the error
	}{
		{"unknown key", "# pombo\n[smtp]\n\nlisen = [\"127.0.0.1:25\"]\n",
			[]string{`config:4: unknown key "smtp.lisen" (did you mean "smtp.listen"?)`}},
		{"unknown table", "[smpt]\nlisten = []\n",
			[]string{`config:1: unknown key "smpt" (did you mean "smtp"?)`}},
		{"unknown top-level key", "hostname = \"a\"\nfoo = 1\n",
			[]string{`config:2: unknown key "foo"`}},
		{"unknown dotted key", "\nlimits.max_mesage_size = 1\n",
			[]string{`config:2: unknown key "limits.max_mesage_size" (did you mean "limits.max_message_size"?)`}},
		{"unknown quoted key", "[limits]\n\"max size\" = 1\n",
			[]string{`config:2: unknown key "limits.\"max size\""`}},
		{"unknown key in inline table", "\ntls = { cert = \"x\" }\n",
			[]string{`config:2: unknown key "tls.cert"`}},
		{"unknown key after multi-line string", "hostname = \"\"\"\nx = 1\n\"\"\"\n[log]\nlevle = \"info\"\n",
			[]string{`config:5: unknown key "log.levle"`}},
		{"bad size", "[limits]\nmax_message_size = \"50XB\"\n",
			[]string{`config:2: limits.max_message_size: "50XB" is not a size`}},
		{"negative size", "[limits]\nmax_message_size = -1\n",
			[]string{`config:2: limits.max_message_size: -1 is not a size`}},
		{"zero size", "[limits]\nmax_message_size = 0\n",
			[]string{`config:2: limits.max_message_size: must be greater than 0`}},
		{"size of wrong type", "[user_defaults]\nquota = 1.5\n",
			[]string{`config:2: user_defaults.quota: expected a size such as "50MB" or an integer, got a float`}},
		{"bad duration", "[limits]\n\ncommand_timeout = \"5 minutes\"\n",
			[]string{`config:3: limits.command_timeout: "5 minutes" is not a duration`}},
		{"duration without unit", "[auth]\nfailure_window = 15\n",
			[]string{`config:2: auth.failure_window: 15 is not a duration: give a unit`}},
		{"negative duration", "[limits]\ndata_timeout = \"-1m\"\n",
			[]string{`config:2: limits.data_timeout: must be greater than 0, not -1m`}},
		{"zero login timeout", "[limits]\nimap_login_timeout = \"0s\"\n",
			[]string{`config:2: limits.imap_login_timeout: must be greater than 0, not 0s`}},
		{"negative autologout", "[limits]\nimap_autologout = \"-30m\"\n",
			[]string{`config:2: limits.imap_autologout: must be greater than 0, not -30m`}},
		{"retry_max below retry_initial", "[queue]\nretry_initial = \"1h\"\nretry_max = \"10m\"\n",
			[]string{`config:3: queue.retry_max: must be at least queue.retry_initial (1h), not 10m`}},
		{"bad listen address", "[smtp]\nlisten = [\"127.0.0.1\"]\n",
			[]string{`config:2: smtp.listen: "127.0.0.1" is not host:port (missing port in address)`}},
		{"bad port", "[imap]\ntls_listen = [\"0.0.0.0:70000\"]\n",
			[]string{`config:2: imap.tls_listen: "0.0.0.0:70000": port 70000 is out of range 0-65535`}},
		{"port name", "[pop3]\nlisten = [\"[::1]:pop3\"]\n",
			[]string{`config:2: pop3.listen: "[::1]:pop3": port "pop3" is not a number`}},
		{"conflicting listeners", "[smtp]\nlisten = [\":25\"]\n[submission]\nlisten = [\"127.0.0.1:25\"]\n",
			[]string{`config:4: submission.listen: "127.0.0.1:25" conflicts with ":25" in smtp.listen`}},
		{"conflict with a default", "[http]\nlisten = [\"0.0.0.0:2143\"]\n",
			[]string{`config:2: http.listen: "0.0.0.0:2143" conflicts with "127.0.0.1:2143" in imap.listen`}},
		{"bad resolver", "[dns]\nresolver = \"8.8.8.8\"\n",
			[]string{`config:2: dns.resolver: "8.8.8.8" is not host:port`}},
		{"cert without key", "[tls]\ncert_file = \"/etc/pombo/cert.pem\"\n",
			[]string{`config:1: tls.key_file: must be set when tls.cert_file is set`}},
		{"key without cert", "[tls]\nkey_file = \"/etc/pombo/key.pem\"\n",
			[]string{`config:1: tls.cert_file: must be set when tls.key_file is set`}},
		{"bad tls mode", "[relay]\nhost = \"smtp.example.net\"\ntls = \"tsl\"\n",
			[]string{`config:3: relay.tls: "tsl" is not one of "starttls", "implicit", "none"`}},
		{"bad relay port", "[relay]\nport = 0\n",
			[]string{`config:2: relay.port: 0 is out of range 1-65535`}},
		{"relay password without username", "[relay]\nhost = \"smtp.example.net\"\npassword = \"s3cret\"\n",
			[]string{`config:1: relay.username: must be set when relay.password is set`}},
		{"bad log level", "[log]\nlevel = \"verbose\"\n",
			[]string{`config:2: log.level: "verbose" is not one of "debug", "info", "warn", "error"`}},
		{"string where list expected", "[smtp]\nlisten = \"127.0.0.1:25\"\n",
			[]string{`config:2: smtp.listen: expected a list of strings, got a string`}},
		{"number in list", "[imap]\nlisten = [\"127.0.0.1:143\", 993]\n",
			[]string{`config:2: imap.listen: expected a list of strings, element 2 is an integer`}},
		{"value where table expected", "limits = 5\n",
			[]string{`config:1: limits: expected a table, got an integer`}},
		{"string where integer expected", "[queue]\nworkers = \"4\"\n",
			[]string{`config:2: queue.workers: expected an integer, got a string`}},
		{"integer where boolean expected", "[auth]\nallow_plaintext_from_loopback = 1\n",
			[]string{`config:2: auth.allow_plaintext_from_loopback: expected true or false, got an integer`}},
		{"zero count", "[limits]\nmax_errors = 0\n",
			[]string{`config:2: limits.max_errors: must be greater than 0, not 0`}},
		{"short lines", "[limits]\nmax_line_length = 80\n",
			[]string{`config:2: limits.max_line_length: must be at least 1000`}},
		{"empty hostname", "hostname = \"\"\n",
			[]string{`config:1: hostname: must not be empty`}},
		{"hostname with space", "hostname = \"mail example\"\n",
			[]string{`config:1: hostname: "mail example" is not a valid host name`}},
		{"relay host with port", "[relay]\nhost = \"smtp.example.net:587\"\n",
			[]string{`config:2: relay.host: "smtp.example.net:587" is not a valid host name (the port goes in relay.port)`}},
		{"syntax error", "[smtp]\nlisten = [\"a:1\"\n",
			[]string{`config:2: expected a comma`}},
		{"every problem reported in line order", "[log]\nlevel = \"loud\"\n[limits]\nmax_message_size = \"1XB\"\nbogus = 1\n",
			[]string{"config:2: log.level: \"loud\" is not one of \"debug\", \"info\", \"warn\", \"error\"\n" +
				"config:4: limits.max_message_size: \"1XB\" is not a size (examples: \"50MB\", \"512KB\", \"1GB\", \"1048576\")\n" +
				"config:5: unknown key \"limits.bogus\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte("[smtp]\nlisten = []\n\n\nlisen = []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + `:5: unknown key "smtp.lisen"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load error = %v, want %s", err, want)
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.toml"))
	if err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestValidateMessages(t *testing.T) {
	c := Default()
	c.Limits.MaxMessageSize = 0
	c.Relay.TLS = "ssl"
	err := c.Validate()
	want := "config: limits.max_message_size: must be greater than 0, not 0\n" +
		`config: relay.tls: "ssl" is not one of "starttls", "implicit", "none"`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want\n%s", err, want)
	}
}

// TestCheckCreatesNothing: loading and validating never touches data_dir.
func TestCheckCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c, err := Parse([]byte("data_dir = \"" + dir + "\"\n[tls]\ncert_file = \"" + dir + "/c.pem\"\nkey_file = \"" + dir + "/k.pem\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data_dir exists after Parse/Validate: %v", err)
	}
}

func TestOverlay(t *testing.T) {
	c, err := Parse([]byte(`
hostname = "mx.example.com"
[smtp]
listen = []
[imap]
tls_listen = ["127.0.0.1:0", "[::1]:0"]
[limits]
max_message_size = 1048576
[relay]
host = "smtp.example.net"
port = 465
username = "me"
password = "pw"
tls = "implicit"
[user_defaults]
quota = "2 GiB"
`))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if len(c.SMTP.Listen) != 0 {
		t.Errorf("smtp.listen = %q, want disabled", c.SMTP.Listen)
	}
	for _, a := range c.ListenAddrs() {
		if a.Service == "smtp" {
			t.Errorf("disabled smtp listener in ListenAddrs: %+v", a)
		}
	}
	if !reflect.DeepEqual(c.IMAP.Listen, d.IMAP.Listen) ||
		!reflect.DeepEqual(c.IMAP.TLSListen, []string{"127.0.0.1:0", "[::1]:0"}) {
		t.Errorf("imap = %+v", c.IMAP)
	}
	if c.Hostname != "mx.example.com" || c.Limits.MaxMessageSize != 1<<20 || c.UserDefaults.Quota != 2<<30 {
		t.Errorf("got %+v", c)
	}
	if c.Limits.MaxConnections != d.Limits.MaxConnections || c.Queue != d.Queue {
		t.Errorf("keys absent from the file lost their defaults: %+v", c)
	}
	if c.Relay != (Relay{Host: "smtp.example.net", Port: 465, Username: "me", Password: "pw", TLS: "implicit"}) {
		t.Errorf("relay = %+v", c.Relay)
	}
}

func TestGoodEdgeCases(t *testing.T) {
	for _, in := range []string{
		"[relay]\nhost = \"2001:db8::25\"\n",
		"[relay]\nhost = \"smtp.example.net\"\nusername = \"u\"\npassword = \"p\"\ntls = \"none\"\n",
		"hostname = \"mail.xn--exmple-cua.org\"\n[dns]\nresolver = \"[2001:db8::53]:53\"\n",
		"[smtp]\nlisten = [\"127.0.0.1:0\", \"127.0.0.1:0\"]\n",
		"tls = { cert_file = \"c.pem\", key_file = \"k.pem\" }\n",
		"[limits]\nmax_message_size = \"1 gib\"\nmax_line_length = 4096\n",
	} {
		if _, err := Parse([]byte(in)); err != nil {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
}

func TestTOMLRoundTripRedacted(t *testing.T) {
	c := Default()
	c.Relay = Relay{Host: "smtp.example.net", Port: 587, Username: "me", Password: "hunter2", TLS: "starttls"}
	c.SMTP.Listen = []string{}
	c.DataDir = "/srv/p\"o\\m\tbo\u00e9"
	c.Limits.MaxMessageSize = 1000
	c.Queue.RetryMax = Duration(90 * time.Minute)
	out := c.TOML()
	if strings.Contains(out, "hunter2") || !strings.Contains(out, `password = "********"`) {
		t.Errorf("password not redacted:\n%s", out)
	}
	back, err := Parse([]byte(out))
	if err != nil {
		t.Fatalf("TOML() output does not parse: %v\n%s", err, out)
	}
	if back.Relay.Password != Redacted {
		t.Errorf("password = %q", back.Relay.Password)
	}
	back.Relay.Password = c.Relay.Password
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the config:\n%s\nvs\n%s", back.TOML(), out)
	}
	if c.Relay.Password != "hunter2" {
		t.Error("TOML() modified the config")
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]Size{
		"0": 0, "1048576": 1 << 20, "50MB": 50 << 20, "512KB": 512 << 10, "1GB": 1 << 30,
		"1gib": 1 << 30, "10 MiB": 10 << 20, "7kb": 7 << 10, "100B": 100, " 3M ": 3 << 20,
	}
	for in, want := range good {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "-1", "1.5GB", "50XB", "5 M B", "0x10", "9999999999GB", "99999999999999999999"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	for _, s := range []Size{0, 1, 1000, 1024, 1536, 50 << 20, 3 << 30, 1<<63 - 1} {
		back, err := ParseSize(s.String())
		if err != nil || back != s {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s.String(), back, err, s)
		}
	}
	if s := Size(50 << 20).String(); s != "50MiB" {
		t.Errorf("String() = %q", s)
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 90 * time.Second: "1m30s", 5 * time.Minute: "5m", 4 * time.Hour: "4h",
		120 * time.Hour: "120h", 90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1.5s",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
	}
}

func TestConflict(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{":25", "127.0.0.1:25", true},
		{"0.0.0.0:25", "[::1]:25", true}, // Go listens dual-stack on 0.0.0.0
		{"[::]:25", "0.0.0.0:25", true},
		{"127.0.0.1:25", "127.0.0.1:25", true},
		{"localhost:25", "localhost:25", true},
		{"127.0.0.1:25", "[::1]:25", false},
		{"127.0.0.1:25", "127.0.0.1:587", false},
		{":0", "127.0.0.1:0", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
	} {
		if got := conflict(tt.a, tt.b); got != tt.want {
			t.Errorf("conflict(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	levels := []string{"debug", "info", "warn", "error"}
	got := make([]int, len(levels))
	for i, l := range levels {
		got[i] = int(Log{Level: l}.SlogLevel())
	}
	if !sort.IntsAreSorted(got) || got[0] == got[1] || got[2] == got[3] {
		t.Errorf("levels %v map to %v", levels, got)
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../config.toml.example"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(""))
	f.Add([]byte("hostname = \"mail.example.org\"\n[smtp]\nlisten = []\n"))
	f.Add([]byte("[limits]\nmax_message_size = \"50MB\"\ncommand_timeout = \"90s\"\n"))
	f.Add([]byte("[relay]\nhost = \"smtp.example.net\"\nusername = \"u\"\npassword = \"p\"\ntls = \"none\"\n"))
	f.Add([]byte("tls = { cert_file = \"a\", key_file = \"b\" }\nlimits.max_errors = 3\n"))
	f.Add([]byte("[imap]\nlisten = [\"[::1]:0\", \"127.0.0.1:0\"]\n[user_defaults]\nquota = 1024\n"))
	f.Add([]byte("[smtp]\nlisen = 1\n\"quoted\" = '''\nx\n'''\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse succeeded but Validate fails: %v", err)
		}
		back, err := Parse([]byte(c.TOML()))
		if err != nil {
			t.Fatalf("TOML() output does not parse: %v\n%s", err, c.TOML())
		}
		back.Relay.Password = c.Relay.Password
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("TOML() round trip changed the config:\n%s", c.TOML())
		}
	})
}
