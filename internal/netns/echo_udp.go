package netns

import (
	"errors"
	"net"
	"net/netip"
)

// maxDatagram is the largest UDP payload over IPv4 or IPv6 without jumbograms.
const maxDatagram = 65535

// listenUDP opens the socket inside n and starts echoing datagrams.
func (s *EchoServer) listenUDP(n *Namespace, addr netip.AddrPort) error {
	var conn *net.UDPConn
	err := n.Do(func() (err error) {
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return err
	}
	if err := enablePktinfo(conn); err != nil {
		return errors.Join(err, conn.Close())
	}
	s.sock, s.addr = conn, conn.LocalAddr().(*net.UDPAddr).AddrPort()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		serveUDP(conn)
	}()
	return nil
}

// serveUDP echoes each datagram from the address it was sent to, until conn is
// closed.
func serveUDP(conn *net.UDPConn) {
	buf := make([]byte, maxDatagram)
	oob := make([]byte, 512)
	for {
		n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// A receive error belongs to one datagram (a truncation, a queued
			// ICMP error); the socket itself is still good.
			continue
		}
		// A lost reply looks like a dropped packet to the probe, which is the
		// honest outcome, so write errors are not retried.
		_, _, _ = conn.WriteMsgUDPAddrPort(buf[:n], replySource(oob[:oobn]), from)
	}
}
