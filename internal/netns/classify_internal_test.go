package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassifyMapsSocketErrorsToBlockedKinds(t *testing.T) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{name: "a reset on connect is refused", err: opErr(syscall.ECONNREFUSED), want: ErrRefused},
		{name: "a reset mid-stream is refused", err: opErr(syscall.ECONNRESET), want: ErrRefused},
		{name: "no route to host is unreachable", err: opErr(syscall.EHOSTUNREACH), want: ErrUnreachable},
		{name: "network unreachable is unreachable", err: opErr(syscall.ENETUNREACH), want: ErrUnreachable},
		{name: "a local OUTPUT drop is unreachable", err: opErr(syscall.EPERM), want: ErrUnreachable},
		{name: "an expired deadline is a timeout", err: fmt.Errorf("read: %w", os.ErrDeadlineExceeded), want: ErrTimeout},
		{name: "an expired context is a timeout", err: context.DeadlineExceeded, want: ErrTimeout},
		{name: "end of stream says nothing about reachability", err: io.ErrUnexpectedEOF, want: nil},
		{name: "an unrelated error says nothing about reachability", err: errors.New("boom"), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, classify(tt.err))
		})
	}
}

func TestIsBlockedIsTrueOnlyForRefusedUnreachableAndTimeout(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "success is not blocked", err: nil, want: false},
		{name: "a wrapped refusal is blocked", err: fmt.Errorf("probe: %w", ErrRefused), want: true},
		{name: "unreachable is blocked", err: ErrUnreachable, want: true},
		{name: "a timeout is blocked", err: ErrTimeout, want: true},
		{name: "a wrong echo is not blocked", err: ErrEchoMismatch, want: false},
		{name: "unsupported sctp is not blocked", err: ErrSCTPUnsupported, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsBlocked(tt.err))
		})
	}
}
