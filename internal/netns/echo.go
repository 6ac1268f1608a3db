package netns

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
)

// EchoServer sends back every byte (TCP) or datagram (UDP) it receives. Its
// socket was created inside a namespace and stays there, although it is served
// by ordinary goroutines. Stop it with Close or by canceling the context passed
// to Serve.
type EchoServer struct {
	// proto and addr describe the socket, for Addr and error messages.
	proto Proto
	addr  netip.AddrPort
	// sock is the listener or packet socket; closing it ends the serving loop.
	sock io.Closer
	// stopWatch detaches the context that would otherwise call Close.
	stopWatch func() bool
	// wg counts the serving loop and, for TCP, one goroutine per connection.
	wg sync.WaitGroup

	// mu guards closed and conns, so Close and a late Accept cannot race.
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}

	// closeOnce and closeErr make Close idempotent.
	closeOnce sync.Once
	closeErr  error
}

// Serve starts an echo server for proto inside the namespace, listening on
// addr. A zero port lets the kernel choose one (see Addr). The zero AddrPort
// or an unspecified address (0.0.0.0 or ::) accepts both IPv4 and IPv6. UDP replies leave from
// the address each request was sent to, so a probe's connected socket accepts
// them even when the namespace has several addresses. SCTP returns
// ErrSCTPUnsupported on kernels without SCTP sockets.
func (n *Namespace) Serve(ctx context.Context, proto Proto, addr netip.AddrPort) (*EchoServer, error) {
	s := &EchoServer{proto: proto, conns: map[net.Conn]struct{}{}}
	var err error
	switch proto {
	case TCP:
		err = s.listenTCP(n, addr)
	case UDP:
		err = s.listenUDP(n, addr)
	case SCTP:
		err = s.listenSCTP(n, addr)
	default:
		err = unknownProto("starting echo server", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("starting %s echo server on %s in netns %s: %w", proto, listenAddr(addr), n.name, err)
	}
	s.stopWatch = context.AfterFunc(ctx, func() { _ = s.Close() })
	return s, nil
}

// listenAddr names addr for messages; the zero AddrPort means any address.
func listenAddr(addr netip.AddrPort) string {
	if !addr.Addr().IsValid() {
		return fmt.Sprintf("*:%d", addr.Port())
	}
	return addr.String()
}

// Addr returns the address the server listens on, with the port the kernel
// chose when Serve was given port 0.
func (s *EchoServer) Addr() netip.AddrPort { return s.addr }

// Port returns the port the server listens on.
func (s *EchoServer) Port() uint16 { return s.addr.Port() }

// Close stops the server, closes its connections and waits for its goroutines
// to end. Calling it again returns the first result.
func (s *EchoServer) Close() error {
	s.closeOnce.Do(func() {
		s.stopWatch()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close() // the peer sees a reset or EOF either way
		}
		s.mu.Unlock()
		if err := s.sock.Close(); err != nil {
			s.closeErr = fmt.Errorf("closing %s echo server on %s: %w", s.proto, s.addr, err)
		}
		s.wg.Wait()
	})
	return s.closeErr
}

// track records an accepted connection so Close can end it. It returns false
// once Close has begun, and the caller must then drop the connection.
func (s *EchoServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// untrack forgets a connection that has ended.
func (s *EchoServer) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}
