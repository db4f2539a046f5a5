package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/urfave/cli/v2"

	"pombo/config"
	"pombo/server"
)

// tuneRuntime sets the Go runtime for a server, where the environment
// (GOGC, GOMAXPROCS) does not say otherwise:
//   - GC at 200%: pombo's live heap is small (tens of MB) and its garbage is
//     per-message buffers; collecting half as often costs little memory and
//     a few percent of CPU under load.
//   - At least two Ps, even on one CPU. The storage writer spends each
//     commit's fsync inside a cgo call into SQLite. With a single P the
//     whole server waits until the runtime hands the P over, and the writer
//     then queues behind every session's goroutine. On one CPU with 50
//     SMTP sessions this halved the rate (657 msg/s against 1269 with two).
func tuneRuntime(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}

func (e *env) serve(c *cli.Context) error {
	var cfg *config.Config
	var err error
	if c.Bool("dev") {
		// --dev needs no file: the embedded defaults are the development setup.
		cfg = config.Default()
		cfg.Log.Level = "debug"
	} else if cfg, err = loadConfig(c); err != nil {
		return err
	}
	tuneRuntime(os.Getenv)
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}))
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	if p := c.String("cpuprofile"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "pombo %s serving %s (data in %s)\n", version, cfg.Hostname, cfg.DataDir)
	if srv.SelfSigned {
		fmt.Fprintf(e.stdout, "TLS: self-signed certificate in %s/tls (clients will ask you to accept it)\n", cfg.DataDir)
	}
	for _, b := range srv.Bound() {
		tls := "STARTTLS"
		if b.ImplicitTLS {
			tls = "implicit TLS"
		}
		if b.Service == "http" {
			tls = "plain"
		}
		fmt.Fprintf(e.stdout, "  %-22s %-22s %s\n", b.Key, b.Addr, tls)
	}
	if len(srv.Bound()) == 0 {
		fmt.Fprintln(e.stdout, "  (no listeners)")
	}
	cfgFlag := ""
	if p := c.String("config"); p != "" && !c.Bool("dev") {
		cfgFlag = " --config " + p
	}
	fmt.Fprintf(e.stdout, "Next, in another terminal:\n  pombo%s domain add example.test\n  pombo%s user add you@example.test\n", cfgFlag, cfgFlag)
	<-ctx.Done()
	log.Info("shutting down")
	return srv.Close()
}

func (e *env) configCheck(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	src := "embedded defaults"
	if p := c.String("config"); p != "" {
		src = p
	}
	fmt.Fprintf(e.stdout, "# configuration OK (%s); effective settings:\n%s", src, cfg.TOML())
	return nil
}
