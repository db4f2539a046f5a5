// Command pombo is a self-hosted mail server: SMTP, IMAP and POP3 over one
// SQLite store, managed from this command line.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"pombo/config"
	"pombo/storage"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: tests call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	if err := app.Run(permuteFlags(args)); err != nil {
		fmt.Fprintf(stderr, "pombo: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// oneLine keeps an error to one line for people.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// env is what every action needs: where to write, and how to load the
// configuration.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON"}
	return &cli.App{
		Name:      "pombo",
		Usage:     "a self-hosted mail server (SMTP, IMAP, POP3) on SQLite",
		Version:   version,
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once, on one line, by run.
		ExitErrHandler: func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"POMBO_CONFIG"},
				Usage: "configuration file (default: embedded defaults)"},
		},
		Commands: []*cli.Command{
			{
				Name:  "serve",
				Usage: "run the mail server",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "dev", Usage: "embedded defaults on 127.0.0.1, data in ./pombo-data, debug log; no config file needed"},
					&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of the whole run to this file (for benchmarks)", Hidden: true},
				},
				Action: e.serve,
			},
			{
				Name:  "domain",
				Usage: "manage local domains",
				Subcommands: []*cli.Command{
					{Name: "add", Usage: "make a domain local", ArgsUsage: "DOMAIN", Action: e.domainAdd},
					{Name: "del", Usage: "remove a local domain without users", ArgsUsage: "DOMAIN", Action: e.domainDel},
					{Name: "list", Usage: "list local domains", Flags: []cli.Flag{jsonFlag}, Action: e.domainList},
				},
			},
			{
				Name:  "user",
				Usage: "manage accounts",
				Subcommands: []*cli.Command{
					{Name: "add", Usage: "create an account", ArgsUsage: "EMAIL",
						Flags:  []cli.Flag{&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from the first line of standard input"}},
						Action: e.userAdd},
					{Name: "passwd", Usage: "change a password", ArgsUsage: "EMAIL",
						Flags:  []cli.Flag{&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from the first line of standard input"}},
						Action: e.userPasswd},
					{Name: "del", Usage: "delete an account and all its mail", ArgsUsage: "EMAIL",
						Flags:  []cli.Flag{&cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation"}},
						Action: e.userDel},
					{Name: "list", Usage: "list accounts", Flags: []cli.Flag{jsonFlag}, Action: e.userList},
				},
			},
			{
				Name:  "alias",
				Usage: "manage aliases (ADDRESS may be @domain for a catch-all)",
				Subcommands: []*cli.Command{
					{Name: "add", Usage: "add targets to an alias", ArgsUsage: "ADDRESS TARGET...", Action: e.aliasAdd},
					{Name: "del", Usage: "remove an alias", ArgsUsage: "ADDRESS", Action: e.aliasDel},
					{Name: "list", Usage: "list aliases", Flags: []cli.Flag{jsonFlag}, Action: e.aliasList},
				},
			},
			{
				Name:  "mailbox",
				Usage: "inspect mailboxes",
				Subcommands: []*cli.Command{
					{Name: "list", Usage: "list the mailboxes of an account", ArgsUsage: "EMAIL", Flags: []cli.Flag{jsonFlag}, Action: e.mailboxList},
				},
			},
			queueCommand(e),
			dkimCommand(e),
			{
				Name:  "config",
				Usage: "configuration",
				Subcommands: []*cli.Command{
					{Name: "check", Usage: "validate the configuration and print the effective settings", Action: e.configCheck},
				},
			},
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					fmt.Fprintf(e.stdout, "pombo %s (schema %d)\n", version, storage.SchemaVersion())
					return nil
				},
			},
		},
	}
}

// permuteFlags moves the boolean flags of leaf commands to just after the
// command words, so that `pombo user add EMAIL --password-stdin` works as
// documented (urfave/cli v2 stops parsing flags at the first argument).
func permuteFlags(args []string) []string {
	movable := map[string]bool{"--password-stdin": true, "--yes": true, "--json": true, "--dev": true, "--all": true}
	var rest, moved []string
	for i, a := range args[1:] {
		if a == "--" {
			rest = append(rest, args[1+i:]...)
			break
		}
		if movable[a] {
			moved = append(moved, a)
		} else {
			rest = append(rest, a)
		}
	}
	cut := leafArgStart(rest)
	out := append([]string{args[0]}, rest[:cut]...)
	out = append(out, moved...)
	return append(out, rest[cut:]...)
}

var commandWords = map[string]bool{
	"serve": true, "domain": true, "user": true, "alias": true, "mailbox": true, "config": true, "version": true,
	"add": true, "del": true, "list": true, "passwd": true, "check": true, "queue": true, "show": true, "retry": true,
	"dkim": true, "keygen": true,
}

func leafArgStart(tokens []string) int {
	i := 0
	for i < len(tokens) {
		t := tokens[i]
		switch {
		case t == "--config" || t == "-c":
			i += 2
		case strings.HasPrefix(t, "-"):
			i++
		case commandWords[t]:
			i++
		default:
			return i
		}
	}
	return i
}

// loadConfig reads --config (or POMBO_CONFIG), or the embedded defaults.
func loadConfig(c *cli.Context) (*config.Config, error) {
	path := c.String("config")
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

// openStore opens the database of the configured data directory.
func openStore(c *cli.Context) (*storage.Store, *config.Config, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, nil, err
	}
	st, err := storage.Open(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	return st, cfg, nil
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// args checks the number of positional arguments.
func args(c *cli.Context, min, max int) ([]string, error) {
	a := c.Args().Slice()
	if len(a) < min || (max >= 0 && len(a) > max) {
		return nil, fmt.Errorf("usage: pombo %s %s", c.Command.FullName(), c.Command.ArgsUsage)
	}
	return a, nil
}

var errAborted = errors.New("aborted")
