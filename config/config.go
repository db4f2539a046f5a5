// Package config reads pombo's TOML configuration file into a typed Config.
//
// Invariants:
//   - Load and Parse start from Default(), overlay only the keys present in the
//     file, then Validate. A Config they return is always valid.
//   - The set of keys is fixed by the `toml` tags below: a key pombo does not
//     know is an error, never silently ignored (a typo such as "smtp.lisen"
//     must not leave a listener on its default).
//   - Errors name the key, and the file and line when known:
//     "config.toml:12: limits.max_message_size: "50XB" is not a size".
//   - Validate is pure: it touches neither the filesystem nor the network, so
//     `pombo config check` creates nothing. Whether cert_file exists, data_dir
//     is writable or a port is free is found out when the server starts.
//
// An empty list of listen addresses disables that listener.
package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration. Field tags are the TOML key names.
type Config struct {
	// Hostname is the name used in greetings, EHLO and Received: headers.
	Hostname string `toml:"hostname"`
	// DataDir holds the database and the generated certificate.
	DataDir string `toml:"data_dir"`

	TLS          TLS          `toml:"tls"`
	SMTP         SMTP         `toml:"smtp"`
	Submission   Submission   `toml:"submission"`
	IMAP         Listeners    `toml:"imap"`
	POP3         Listeners    `toml:"pop3"`
	HTTP         HTTP         `toml:"http"`
	DNS          DNS          `toml:"dns"`
	Limits       Limits       `toml:"limits"`
	Auth         Auth         `toml:"auth"`
	Queue        Queue        `toml:"queue"`
	Relay        Relay        `toml:"relay"`
	Log          Log          `toml:"log"`
	UserDefaults UserDefaults `toml:"user_defaults"`
}

// TLS names the certificate; both empty means a self-signed certificate
// generated in DataDir.
type TLS struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// SMTP is the inbound (MX) SMTP server.
type SMTP struct {
	Listen []string `toml:"listen"`
}

// Submission is the authenticated SMTP submission server: Listen offers
// STARTTLS (port 587), TLSListen is implicit TLS (port 465).
type Submission struct {
	Listen                  []string `toml:"listen"`
	TLSListen               []string `toml:"tls_listen"`
	MaxMessagesPerHour      int      `toml:"max_messages_per_hour"`
	MaxRecipientsPerMessage int      `toml:"max_recipients_per_message"`
}

// Listeners is a plain (STARTTLS-capable) and an implicit-TLS list of
// addresses, used by [imap] and [pop3].
type Listeners struct {
	Listen    []string `toml:"listen"`
	TLSListen []string `toml:"tls_listen"`
}

// HTTP is the HTTP listener.
type HTTP struct {
	Listen []string `toml:"listen"`
}

// DNS selects the resolver.
type DNS struct {
	// Resolver is "" for the system resolver, or "host:port".
	Resolver string `toml:"resolver"`
}

// Limits bound what one peer can cost the server.
type Limits struct {
	MaxMessageSize      Size     `toml:"max_message_size"`
	MaxConnections      int      `toml:"max_connections"`
	MaxConnectionsPerIP int      `toml:"max_connections_per_ip"`
	MaxRecipients       int      `toml:"max_recipients"`
	MaxErrors           int      `toml:"max_errors"` // SMTP/POP3 errors before disconnect
	CommandTimeout      Duration `toml:"command_timeout"`
	DataTimeout         Duration `toml:"data_timeout"`
	IMAPIdleTimeout     Duration `toml:"imap_idle_timeout"`
	IMAPLoginTimeout    Duration `toml:"imap_login_timeout"`
	IMAPAutologout      Duration `toml:"imap_autologout"`
	POP3IdleTimeout     Duration `toml:"pop3_idle_timeout"`
	MaxLineLength       int      `toml:"max_line_length"` // octets, CRLF included
}

// Auth controls login policy and throttling.
type Auth struct {
	AllowPlaintextFromLoopback bool     `toml:"allow_plaintext_from_loopback"`
	MaxFailuresPerIP           int      `toml:"max_failures_per_ip"`
	MaxFailuresPerAccount      int      `toml:"max_failures_per_account"`
	FailureWindow              Duration `toml:"failure_window"`
}

// Queue controls outbound delivery retries.
type Queue struct {
	RetryInitial Duration `toml:"retry_initial"`
	RetryMax     Duration `toml:"retry_max"`
	GiveUpAfter  Duration `toml:"give_up_after"`
	Workers      int      `toml:"workers"`
}

// Relay TLS modes.
const (
	RelayTLSStartTLS = "starttls"
	RelayTLSImplicit = "implicit"
	RelayTLSNone     = "none"
)

// Relay is an optional smarthost; Host "" delivers directly by MX.
type Relay struct {
	Host     string `toml:"host"`
	Port     int    `toml:"port"`
	Username string `toml:"username"`
	Password string `toml:"password"`
	TLS      string `toml:"tls"` // RelayTLSStartTLS, RelayTLSImplicit or RelayTLSNone
}

// Log configures logging.
type Log struct {
	Level string `toml:"level"` // "debug", "info", "warn" or "error"
}

// SlogLevel returns Level as a slog.Level (info if unknown).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// UserDefaults apply to accounts created without explicit settings.
type UserDefaults struct {
	Quota Size `toml:"quota"` // 0 means unlimited
}

// Default returns the built-in configuration: unprivileged ports on loopback,
// so that a bare `pombo serve` is safe to try.
func Default() *Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return &Config{
		Hostname: host,
		DataDir:  "./pombo-data",
		SMTP:     SMTP{Listen: []string{"127.0.0.1:2525"}},
		Submission: Submission{
			Listen:                  []string{"127.0.0.1:2587"},
			TLSListen:               []string{"127.0.0.1:2465"},
			MaxMessagesPerHour:      200,
			MaxRecipientsPerMessage: 50,
		},
		IMAP: Listeners{Listen: []string{"127.0.0.1:2143"}, TLSListen: []string{"127.0.0.1:2993"}},
		POP3: Listeners{Listen: []string{"127.0.0.1:2110"}, TLSListen: []string{"127.0.0.1:2995"}},
		HTTP: HTTP{Listen: []string{"127.0.0.1:8080"}},
		Limits: Limits{
			MaxMessageSize:      50 << 20,
			MaxConnections:      1000,
			MaxConnectionsPerIP: 20,
			MaxRecipients:       100,
			MaxErrors:           10,
			CommandTimeout:      minutes(5),
			DataTimeout:         minutes(10),
			IMAPIdleTimeout:     minutes(30),
			IMAPLoginTimeout:    minutes(1),
			IMAPAutologout:      minutes(30),
			POP3IdleTimeout:     minutes(10),
			MaxLineLength:       1000,
		},
		Auth: Auth{
			AllowPlaintextFromLoopback: true,
			MaxFailuresPerIP:           10,
			MaxFailuresPerAccount:      5,
			FailureWindow:              minutes(15),
		},
		Queue: Queue{
			RetryInitial: minutes(5),
			RetryMax:     minutes(4 * 60),
			GiveUpAfter:  minutes(120 * 60),
			Workers:      4,
		},
		Relay: Relay{Port: 587, TLS: RelayTLSStartTLS},
		Log:   Log{Level: "info"},
	}
}

func minutes(n int) Duration { return Duration(int64(n) * 60e9) }

// Load reads the file at path over Default() and validates the result.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(path, data)
}

// Parse is Load for a file already in memory; errors are prefixed "config".
func Parse(data []byte) (*Config, error) {
	return parse("config", data)
}

// Redacted is printed in place of a secret.
const Redacted = "********"

// TOML renders the effective configuration as TOML that Parse reads back,
// with relay.password replaced by Redacted when set.
func (c *Config) TOML() string {
	cc := *c
	if cc.Relay.Password != "" {
		cc.Relay.Password = Redacted
	}
	var b bytes.Buffer
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	if err := enc.Encode(cc); err != nil {
		// Only reachable if a field gets a type the encoder cannot handle.
		return "# cannot render configuration: " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n"
	}
	return b.String()
}

// ListenAddr is one address a listener binds.
type ListenAddr struct {
	Key         string // the config key, e.g. "imap.tls_listen"
	Service     string // "smtp", "submission", "imap", "pop3" or "http"
	ImplicitTLS bool   // TLS from the first byte (465, 993, 995)
	Addr        string // "host:port"
}

// ListenAddrs lists every configured listen address, in a fixed order.
func (c *Config) ListenAddrs() []ListenAddr {
	var out []ListenAddr
	add := func(service, key string, tls bool, addrs []string) {
		for _, a := range addrs {
			out = append(out, ListenAddr{Key: service + "." + key, Service: service, ImplicitTLS: tls, Addr: a})
		}
	}
	add("smtp", "listen", false, c.SMTP.Listen)
	add("submission", "listen", false, c.Submission.Listen)
	add("submission", "tls_listen", true, c.Submission.TLSListen)
	add("imap", "listen", false, c.IMAP.Listen)
	add("imap", "tls_listen", true, c.IMAP.TLSListen)
	add("pop3", "listen", false, c.POP3.Listen)
	add("pop3", "tls_listen", true, c.POP3.TLSListen)
	add("http", "listen", false, c.HTTP.Listen)
	return out
}
