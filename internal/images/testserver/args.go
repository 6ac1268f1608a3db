package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// errUsage marks bad command-line arguments.
var errUsage = errors.New("bad usage")

// defaultTimeout bounds each client command.
const defaultTimeout = 5 * time.Second

// serveConfig is what `serve` serves.
type serveConfig struct {
	httpPort int // 0: no HTTP
	udpPort  int // 0: no UDP
}

// getConfig is one `get`.
type getConfig struct {
	url     string
	timeout time.Duration
}

// lookupConfig is one `lookup`.
type lookupConfig struct {
	name    string
	timeout time.Duration
}

// connectConfig is one `connect`.
type connectConfig struct {
	addr    string
	udp     bool
	timeout time.Duration
}

func parseServe(args []string) (serveConfig, error) {
	cfg := serveConfig{}
	fs := newFlagSet("serve")
	fs.IntVar(&cfg.httpPort, "http-port", 8080, "HTTP port, 0 for none")
	fs.IntVar(&cfg.udpPort, "udp-port", 0, "UDP echo port, 0 for none")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return serveConfig{}, err
	}
	if len(pos) != 0 {
		return serveConfig{}, fmt.Errorf("%w: serve takes no argument, got %q", errUsage, pos)
	}
	for _, p := range []struct {
		name string
		port int
	}{{"http-port", cfg.httpPort}, {"udp-port", cfg.udpPort}} {
		if p.port < 0 || p.port > 65535 {
			return serveConfig{}, fmt.Errorf("%w: --%s %d is not a port", errUsage, p.name, p.port)
		}
	}
	if cfg.httpPort == 0 && cfg.udpPort == 0 {
		return serveConfig{}, fmt.Errorf("%w: serve needs --http-port or --udp-port", errUsage)
	}
	return cfg, nil
}

func parseGet(args []string) (getConfig, error) {
	cfg := getConfig{}
	fs := newFlagSet("get")
	fs.DurationVar(&cfg.timeout, "timeout", defaultTimeout, "time for the whole request")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return getConfig{}, err
	}
	if len(pos) != 1 {
		return getConfig{}, fmt.Errorf("%w: get takes one URL, got %q", errUsage, pos)
	}
	cfg.url = pos[0]
	if !strings.HasPrefix(cfg.url, "http://") && !strings.HasPrefix(cfg.url, "https://") {
		return getConfig{}, fmt.Errorf("%w: %q is not an http:// or https:// URL", errUsage, cfg.url)
	}
	return cfg, checkTimeout(cfg.timeout)
}

func parseLookup(args []string) (lookupConfig, error) {
	cfg := lookupConfig{}
	fs := newFlagSet("lookup")
	fs.DurationVar(&cfg.timeout, "timeout", defaultTimeout, "time for the lookup")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return lookupConfig{}, err
	}
	if len(pos) != 1 || pos[0] == "" {
		return lookupConfig{}, fmt.Errorf("%w: lookup takes one name, got %q", errUsage, pos)
	}
	cfg.name = pos[0]
	return cfg, checkTimeout(cfg.timeout)
}

func parseConnect(args []string) (connectConfig, error) {
	cfg := connectConfig{}
	fs := newFlagSet("connect")
	fs.BoolVar(&cfg.udp, "udp", false, "send a UDP datagram and wait for the answer")
	fs.DurationVar(&cfg.timeout, "timeout", defaultTimeout, "time to connect or to be answered")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return connectConfig{}, err
	}
	if len(pos) != 1 {
		return connectConfig{}, fmt.Errorf("%w: connect takes one HOST:PORT, got %q", errUsage, pos)
	}
	cfg.addr = pos[0]
	if _, _, err := splitHostPort(cfg.addr); err != nil {
		return connectConfig{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, checkTimeout(cfg.timeout)
}

// newFlagSet returns a flag set that reports errors instead of printing or exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args with fs, flags before or after the positional arguments (`get URL
// --timeout 1s` as well as `get --timeout 1s URL`), and returns the positional ones. After
// "--" everything is positional.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		rest := args
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errUsage, fs.Name(), err)
		}
		args = fs.Args()
		// flag stops at "--" and drops it; everything after it is positional.
		if n := len(rest) - len(args); n > 0 && rest[n-1] == "--" {
			return append(pos, args...), nil
		}
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// checkTimeout rejects a timeout that would never let a command succeed.
func checkTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%w: --timeout %v must be positive", errUsage, d)
	}
	return nil
}
