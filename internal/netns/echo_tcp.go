package netns

import (
	"net"
	"net/netip"
)

// listenTCP opens the listening socket inside n and starts accepting.
func (s *EchoServer) listenTCP(n *Namespace, addr netip.AddrPort) error {
	var ln *net.TCPListener
	err := n.Do(func() (err error) {
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return err
	}
	s.serveStream(ln, ln.Addr().(*net.TCPAddr).AddrPort())
	return nil
}

// serveStream accepts connections on ln and echoes each one on its own
// goroutine. SCTP reuses it, since a one-to-one SCTP socket behaves as a stream.
func (s *EchoServer) serveStream(ln net.Listener, addr netip.AddrPort) {
	s.sock, s.addr = ln, addr
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				// Closed by Close, or broken: either way probes will now see
				// refusals, which is what a test should notice.
				return
			}
			if !s.track(c) {
				_ = c.Close()
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer s.untrack(c)
				echoStream(c)
			}()
		}
	}()
}

// echoStream copies c back to itself until the peer stops sending. A plain
// buffer loop, rather than io.Copy, keeps splice(2) out of the way for
// protocols that do not support it.
func echoStream(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		nr, err := c.Read(buf)
		if nr > 0 {
			if _, werr := c.Write(buf[:nr]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
