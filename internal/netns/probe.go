package netns

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

const (
	// payloadLen is long enough that a random payload cannot be mistaken for
	// another probe's.
	payloadLen = 32
	// udpResend is how often a UDP probe repeats its datagram while it waits,
	// so one datagram lost while the path settles does not read as blocked.
	udpResend = 100 * time.Millisecond
)

// Probe sends a random payload to addr over proto from inside the namespace and
// checks that the same bytes come back, all within timeout. It returns nil when
// the echo arrives. Otherwise the error wraps ErrRefused, ErrUnreachable or
// ErrTimeout when the traffic was blocked (see IsBlocked), ErrEchoMismatch when
// something answered with other bytes, or ErrSCTPUnsupported for SCTP on a
// kernel without it. A UDP probe reports ErrTimeout when no echo arrives in
// time, and ErrRefused when an ICMP port unreachable comes back.
func (n *Namespace) Probe(proto Proto, addr netip.AddrPort, timeout time.Duration) error {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	payload := make([]byte, payloadLen)
	if _, err := rand.Read(payload); err != nil {
		return fmt.Errorf("probing %s %s from netns %s: reading random payload: %w", proto, addr, n.name, err)
	}
	deadline := time.Now().Add(timeout)
	var err error
	switch proto {
	case TCP:
		err = n.Do(func() error {
			d := net.Dialer{Deadline: deadline}
			return probeStream(func() (net.Conn, error) { return d.Dial("tcp", addr.String()) }, payload, deadline)
		})
	case SCTP:
		err = n.Do(func() error {
			return probeStream(func() (net.Conn, error) { return dialSCTP(addr) }, payload, deadline)
		})
	case UDP:
		err = n.Do(func() error { return probeUDP(addr, payload, deadline) })
	default:
		err = unknownProto("probing", proto)
	}
	if err == nil {
		return nil
	}
	if kind := classify(err); kind != nil {
		return fmt.Errorf("probing %s %s from netns %s: %w: %w", proto, addr, n.name, kind, err)
	}
	return fmt.Errorf("probing %s %s from netns %s: %w", proto, addr, n.name, err)
}

// probeStream connects with dial, writes payload and reads the echo back. It
// runs inside Do, so dial creates its socket in the namespace.
func probeStream(dial func() (net.Conn, error), payload []byte, deadline time.Time) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return fmt.Errorf("setting deadline: %w", err)
	}
	if _, err := c.Write(payload); err != nil {
		return err
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, payload) {
		return ErrEchoMismatch
	}
	return nil
}

// probeUDP sends payload from a connected socket, so ICMP errors are reported
// to it, and waits for the echo, resending until the deadline.
func probeUDP(addr netip.AddrPort, payload []byte, deadline time.Time) error {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return err
	}
	defer c.Close()
	got := make([]byte, maxDatagram)
	for {
		if _, err := c.Write(payload); err != nil {
			return err
		}
		wait := time.Now().Add(udpResend)
		if wait.After(deadline) {
			wait = deadline
		}
		if err := c.SetReadDeadline(wait); err != nil {
			return fmt.Errorf("setting deadline: %w", err)
		}
		nr, err := c.Read(got)
		switch {
		case err == nil && bytes.Equal(got[:nr], payload):
			return nil
		case err == nil:
			return ErrEchoMismatch
		case !isTimeout(err) || !time.Now().Before(deadline):
			return err
		}
	}
}

// isTimeout reports whether err is a deadline expiring.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
