package netns

import "fmt"

// Proto is a transport protocol the echo server and probe speak. Its values
// are the names iptables -p accepts.
type Proto string

// The protocols Serve and Probe know.
const (
	// TCP is echoed per connection; a probe connects, writes and reads back.
	TCP Proto = "tcp"
	// UDP is echoed per datagram; a probe resends until the echo or its timeout.
	UDP Proto = "udp"
	// SCTP behaves as TCP over a one-to-one SCTP socket, on kernels that have
	// SCTP (see SCTPSupported).
	SCTP Proto = "sctp"
)

// unknownProto is the error for a Proto outside the constants above.
func unknownProto(op string, p Proto) error {
	return fmt.Errorf("%s: unknown protocol %q", op, p)
}
