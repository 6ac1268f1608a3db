package netns

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// enablePktinfo asks the kernel to report each datagram's destination address.
// A socket bound to a wildcard address would otherwise reply from whichever
// address the route prefers, and the probe's connected socket would drop a
// reply from any address other than the one it sent to.
func enablePktinfo(conn *net.UDPConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("enabling packet info: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil {
			serr = fmt.Errorf("reading socket domain: %w", err)
			return
		}
		if domain == unix.AF_INET {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		} else {
			// An IPv6 socket reports IPv4 destinations as v4-mapped addresses too.
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("enabling packet info: %w", err)
	}
	return nil
}

// replySource turns the packet info of a received datagram into control data
// that sends the reply from the address the datagram was sent to. It returns
// nil, meaning the kernel's choice, when oob carries no packet info.
func replySource(oob []byte) []byte {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 12:
			// struct in_pktinfo: ifindex, spec_dst, addr (the header's destination).
			// The reply sets spec_dst, the source to use, and leaves ifindex to routing.
			var info unix.Inet4Pktinfo
			copy(info.Spec_dst[:], m.Data[8:12])
			return unix.PktInfo4(&info)
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16:
			// struct in6_pktinfo: addr (the header's destination), ifindex.
			var info unix.Inet6Pktinfo
			copy(info.Addr[:], m.Data[:16])
			return unix.PktInfo6(&info)
		}
	}
	return nil
}
