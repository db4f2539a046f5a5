package testutil

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pombo/auth"
	"pombo/config"
	"pombo/server"
)

// Config returns a configuration for a test server: data in a temp dir,
// every listener on 127.0.0.1:0, loud logs only with POMBO_TEST_LOG=1.
func Config(t testing.TB) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Hostname = "mx.example.test"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	any0 := []string{"127.0.0.1:0"}
	cfg.SMTP.Listen = any0
	cfg.Submission.Listen, cfg.Submission.TLSListen = any0, any0
	cfg.IMAP.Listen, cfg.IMAP.TLSListen = any0, any0
	cfg.POP3.Listen, cfg.POP3.TLSListen = any0, any0
	cfg.HTTP.Listen = any0
	return cfg
}

// Logger returns a logger for tests: discarded unless POMBO_TEST_LOG=1.
func Logger() *slog.Logger {
	if os.Getenv("POMBO_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// StartServer starts a real pombo on loopback with cfg (Config(t) when nil)
// and stops it when the test ends.
func StartServer(t testing.TB, cfg *config.Config) *server.Server {
	t.Helper()
	if cfg == nil {
		cfg = Config(t)
	}
	srv, err := server.New(cfg, Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// AddUser creates a local user (and its domain) with a password.
func AddUser(t testing.TB, srv *server.Server, address, password string) int64 {
	t.Helper()
	ctx := context.Background()
	domain := address[strings.LastIndexByte(address, '@')+1:]
	if ok, _ := srv.Store.IsLocalDomain(ctx, domain); !ok {
		if err := srv.Store.AddDomain(ctx, domain); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u, err := srv.Store.AddUser(ctx, address, hash, 0)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
