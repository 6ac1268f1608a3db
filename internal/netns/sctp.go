package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// The standard library has no SCTP, so SCTP sockets are made with raw
// syscalls and then handed to the net package as files. A one-to-one
// (SOCK_STREAM) SCTP socket accepts, reads and writes like TCP, so the net
// package serves it through its poller with deadlines, as it would a TCP
// socket; only the TCP-specific options it sets on the way fail, and it
// ignores those failures.

// SCTPSupported reports whether this kernel can open SCTP sockets. Kernels
// built without CONFIG_IP_SCTP answer EPROTONOSUPPORT; iptables rules that
// match -p sctp still work there, but no SCTP packet can be sent.
func SCTPSupported() (bool, error) {
	fd, err := sctpSocket(unix.AF_INET)
	if errors.Is(err, ErrSCTPUnsupported) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_ = unix.Close(fd)
	return true, nil
}

// sctpSocket opens a non-blocking one-to-one SCTP socket, or returns
// ErrSCTPUnsupported when the kernel has no SCTP.
func sctpSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.ESOCKTNOSUPPORT):
		return -1, fmt.Errorf("opening sctp socket: %w: %w", ErrSCTPUnsupported, err)
	case err != nil:
		return -1, fmt.Errorf("opening sctp socket: %w", err)
	}
	return fd, nil
}

// listenSCTP opens the listening socket inside n and starts accepting.
func (s *EchoServer) listenSCTP(n *Namespace, addr netip.AddrPort) error {
	var (
		ln    net.Listener
		bound netip.AddrPort
	)
	err := n.Do(func() (err error) {
		ln, bound, err = listenSCTPHere(addr)
		return err
	})
	if err != nil {
		return err
	}
	s.serveStream(ln, bound)
	return nil
}

// listenSCTPHere binds and listens in the calling thread's namespace. An
// unspecified or missing address gives a dual-stack IPv6 socket, as net.Listen
// does for TCP.
func listenSCTPHere(addr netip.AddrPort) (net.Listener, netip.AddrPort, error) {
	ip := addr.Addr().Unmap()
	dualStack := !ip.IsValid() || ip.IsUnspecified()
	if dualStack {
		ip = netip.IPv6Unspecified()
	}
	family, sa := sockaddr(netip.AddrPortFrom(ip, addr.Port()))
	fd, err := sctpSocket(family)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	f := os.NewFile(uintptr(fd), "sctp-listener")
	defer f.Close() // net.FileListener keeps its own duplicate
	if dualStack {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return nil, netip.AddrPort{}, fmt.Errorf("making sctp socket dual-stack: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("setting SO_REUSEADDR on sctp socket: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("binding sctp socket: %w", err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("listening on sctp socket: %w", err)
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("reading sctp socket address: %w", err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("wrapping sctp listener: %w", err)
	}
	return ln, addrPort(local), nil
}

// dialSCTP starts an association to addr from the calling thread's namespace.
// The connect is non-blocking: data written before the association is up is
// queued by the kernel, and an association that fails surfaces as a read error
// (ECONNREFUSED on ABORT) or a deadline.
func dialSCTP(addr netip.AddrPort) (net.Conn, error) {
	family, sa := sockaddr(addr)
	fd, err := sctpSocket(family)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "sctp")
	defer f.Close() // net.FileConn keeps its own duplicate
	if err := unix.Connect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return nil, fmt.Errorf("connecting sctp socket: %w", err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("wrapping sctp socket: %w", err)
	}
	return c, nil
}

// sockaddr converts addr to a socket address and the family to open it with.
func sockaddr(addr netip.AddrPort) (int, unix.Sockaddr) {
	ip := addr.Addr().Unmap()
	if ip.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
}

// addrPort converts a socket address back; anything but IPv4 or IPv6 gives the
// zero AddrPort.
func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}
