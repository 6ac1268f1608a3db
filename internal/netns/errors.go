package netns

import (
	"context"
	"errors"
	"os"
	"syscall"
)

// ErrRefused means the peer actively refused the probe: a TCP reset, or an ICMP
// port unreachable, which is what a closed port or an iptables REJECT returns.
var ErrRefused = errors.New("connection refused")

// ErrUnreachable means the probe could not be routed: an ICMP host, network or
// administratively prohibited error, no route, or a local OUTPUT rule that
// dropped a UDP datagram before it left (the sender gets EPERM). A TCP SYN
// dropped by OUTPUT is retransmitted instead, and ends in ErrTimeout.
var ErrUnreachable = errors.New("destination unreachable")

// ErrTimeout means no answer came before the probe's timeout, which is what a
// DROP rule anywhere on the path looks like. A UDP probe reports it when no echo
// arrives.
var ErrTimeout = errors.New("no answer before timeout")

// ErrEchoMismatch means an answer came back but it was not the probe's payload.
// It is not a sign of blocking; it means something other than the echo server
// answered.
var ErrEchoMismatch = errors.New("echo does not match the payload sent")

// ErrSCTPUnsupported means the kernel has no SCTP sockets (socket(2) returns
// EPROTONOSUPPORT), so SCTP traffic cannot be generated even though iptables
// rules matching -p sctp can still be written.
var ErrSCTPUnsupported = errors.New("kernel does not support SCTP sockets")

// IsBlocked reports whether err is a probe result that means the traffic did
// not get through: refused, unreachable or timed out. It is false for nil and
// for errors that say the test itself is broken, such as ErrEchoMismatch.
func IsBlocked(err error) bool {
	return errors.Is(err, ErrRefused) || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrTimeout)
}

// classify maps a socket error to the sentinel a test asserts on, or nil when
// the error says nothing about reachability.
func classify(err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return ErrRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return ErrUnreachable
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT):
		return ErrTimeout
	}
	if isTimeout(err) {
		return ErrTimeout
	}
	return nil
}
