package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// runServe listens on cfg's ports and serves until ctx ends.
func runServe(ctx context.Context, cfg serveConfig, stderr io.Writer) error {
	hostname, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("reading the hostname: %w", err)
	}
	var httpLn net.Listener
	var udpConn net.PacketConn
	if cfg.httpPort != 0 {
		if httpLn, err = net.Listen("tcp", ":"+strconv.Itoa(cfg.httpPort)); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "testserver: serving HTTP on %s\n", httpLn.Addr())
	}
	if cfg.udpPort != 0 {
		if udpConn, err = net.ListenPacket("udp", ":"+strconv.Itoa(cfg.udpPort)); err != nil {
			if httpLn != nil {
				httpLn.Close()
			}
			return err
		}
		fmt.Fprintf(stderr, "testserver: answering UDP on %s\n", udpConn.LocalAddr())
	}
	return serve(ctx, hostname, httpLn, udpConn)
}

// serve answers HTTP on httpLn and UDP on udpConn (either may be nil) until ctx ends, then
// closes both. It returns the first failure of either.
func serve(ctx context.Context, hostname string, httpLn net.Listener, udpConn net.PacketConn) error {
	errs := make(chan error, 2)
	running := 0
	var srv *http.Server
	if httpLn != nil {
		srv = &http.Server{Handler: newHandler(hostname), ReadHeaderTimeout: 10 * time.Second}
		running++
		go func() {
			err := srv.Serve(httpLn)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errs <- err
		}()
	}
	if udpConn != nil {
		running++
		go func() { errs <- serveUDP(ctx, hostname, udpConn) }()
	}

	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
		running--
	}
	if srv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}
	if udpConn != nil {
		udpConn.Close()
	}
	for ; running > 0; running-- {
		if err := <-errs; first == nil {
			first = err
		}
	}
	return first
}

// newHandler answers the HTTP paths of `serve`.
func newHandler(hostname string) http.Handler {
	mux := http.NewServeMux()
	text := func(body func(*http.Request) string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, body(r))
		}
	}
	hostnameBody := text(func(*http.Request) string { return hostname })
	mux.Handle("GET /{$}", hostnameBody)
	mux.Handle("GET /hostname", hostnameBody)
	// RemoteAddr is the peer of the TCP connection: the client's own address unless
	// something on the way rewrote it.
	mux.Handle("GET /clientip", text(func(r *http.Request) string { return r.RemoteAddr }))
	mux.Handle("GET /healthz", text(func(*http.Request) string { return "ok" }))
	return mux
}

// udpAnswer is the answer to any datagram from peer.
func udpAnswer(hostname string, peer net.Addr) string {
	return hostname + " " + peer.String()
}

// serveUDP answers every datagram on conn until ctx ends or conn is closed.
func serveUDP(ctx context.Context, hostname string, conn net.PacketConn) error {
	buf := make([]byte, 64*1024)
	for {
		_, peer, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading UDP: %w", err)
		}
		// A peer that cannot be answered must not stop the server.
		_, _ = conn.WriteTo([]byte(udpAnswer(hostname, peer)), peer)
	}
}
