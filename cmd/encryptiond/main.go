// Command encryptiond serves the atlas.encryption.v1.EncryptionService API
// over gRPC and REST in front of MongoDB Atlas. Run it with -help for its
// flags and environment, or with -dev to try it against an in-process Atlas
// emulator. The work happens in package server/daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/encryptiond/encryptiond/server/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// SIGHUP reloads the TLS files and the policy; caught, it no longer
	// ends the process, from here on.
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGHUP)
	if err := run(ctx, os.Args[1:], os.Getenv, reload, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "encryptiond:", err)
		stop()
		os.Exit(exitCode(err))
	}
}

// usageError is a command-line or environment error: exit code 2, as the
// flag package uses.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() + " (see encryptiond -help)" }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}

// run parses the configuration, builds the logger and runs the daemon until
// ctx ends; each value from reload makes it reload its files. Logs go to
// stderr; -help and the -dev banner to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, reload <-chan os.Signal, stdout, stderr io.Writer) error {
	cfg, err := daemon.ParseConfig(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		_, err = io.WriteString(stdout, daemon.Usage())
		return err
	}
	if err != nil {
		return usageError{err}
	}
	cfg.Reload = reload
	return daemon.Run(ctx, cfg, daemon.NewLogger(cfg, stderr), stdout)
}
