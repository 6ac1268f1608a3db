package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
)

// runGet fetches cfg.url and copies a 2xx answer's body to stdout.
func runGet(ctx context.Context, cfg getConfig, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", cfg.url, resp.Status)
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return fmt.Errorf("GET %s: reading the body: %w", cfg.url, err)
	}
	return nil
}

// runLookup resolves cfg.name with Go's own resolver, which reads /etc/resolv.conf and
// /etc/hosts as a pod's libc would, and prints the addresses in order, IPv4 first.
func runLookup(ctx context.Context, cfg lookupConfig, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	r := &net.Resolver{PreferGo: true}
	hosts, err := r.LookupHost(ctx, cfg.name)
	if err != nil {
		return err
	}
	addrs, err := sortAddrs(hosts)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		fmt.Fprintln(stdout, a)
	}
	return nil
}

// sortAddrs parses addresses and sorts them as addresses (10.0.0.9 before 10.0.0.10),
// dropping duplicates.
func sortAddrs(hosts []string) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(hosts))
	for _, h := range hosts {
		a, err := netip.ParseAddr(h)
		if err != nil {
			return nil, fmt.Errorf("resolver answered %q: %w", h, err)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// errNoAnswer means a UDP datagram got no answer in time.
var errNoAnswer = errors.New("no answer")

// runConnect opens a TCP connection to cfg.addr, or with cfg.udp sends one datagram and
// prints the answer.
func runConnect(ctx context.Context, cfg connectConfig, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	var d net.Dialer
	if !cfg.udp {
		conn, err := d.DialContext(ctx, "tcp", cfg.addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	conn, err := d.DialContext(ctx, "udp", cfg.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("testserver")); err != nil {
		return err
	}
	buf := make([]byte, 64*1024)
	n, err := conn.Read(buf)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("%w from %s within %v", errNoAnswer, cfg.addr, cfg.timeout)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(buf[:n]))
	return nil
}

// splitHostPort checks that addr is HOST:PORT with a numeric port.
func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q has no host", addr)
	}
	return host, p, nil
}
