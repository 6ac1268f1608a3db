// Command testserver is the end-to-end test tool of k3snet's real-node tests, one static
// binary in the k3snet.local/testserver image with a server and the clients tests run in
// pods through `kubectl exec`:
//
//	testserver serve [--http-port 8080] [--udp-port N]
//	    HTTP: / and /hostname answer the hostname, /clientip the peer's ip:port as the
//	    server sees it (so a test can tell whether the source address was kept), /healthz
//	    "ok". With --udp-port, every datagram is answered with "<hostname> <ip:port>".
//	testserver get [--timeout 5s] URL
//	    prints the body of a 2xx answer.
//	testserver lookup [--timeout 5s] NAME
//	    prints the addresses NAME resolves to, one per line, through /etc/resolv.conf.
//	testserver connect [--udp] [--timeout 5s] HOST:PORT
//	    succeeds when a TCP connection opens, or, with --udp, when a datagram is answered;
//	    the answer is printed.
//
// Flags may come before or after the argument. A failure exits 1 with one line on stderr;
// bad usage exits 2.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadUsage = 2
)

const usage = `usage:
  testserver serve [--http-port 8080] [--udp-port N]
  testserver get [--timeout 5s] URL
  testserver lookup [--timeout 5s] NAME
  testserver connect [--udp] [--timeout 5s] HOST:PORT
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the sub-command of args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitBadUsage
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		var cfg serveConfig
		if cfg, err = parseServe(args); err == nil {
			err = runServe(ctx, cfg, stderr)
		}
	case "get":
		var cfg getConfig
		if cfg, err = parseGet(args); err == nil {
			err = runGet(ctx, cfg, stdout)
		}
	case "lookup":
		var cfg lookupConfig
		if cfg, err = parseLookup(args); err == nil {
			err = runLookup(ctx, cfg, stdout)
		}
	case "connect":
		var cfg connectConfig
		if cfg, err = parseConnect(args); err == nil {
			err = runConnect(ctx, cfg, stdout)
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "testserver: %s\n%s", oneLine(err), usage)
		return exitBadUsage
	default:
		fmt.Fprintf(stderr, "testserver %s: %s\n", cmd, oneLine(err))
		return exitFailed
	}
}

// oneLine keeps a failure on one line, so a test can quote the last line of stderr.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
