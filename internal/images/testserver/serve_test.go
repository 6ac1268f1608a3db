package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandler(t *testing.T) {
	h := newHandler("pod-a")
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{name: "the root answers the hostname", path: "/", wantStatus: http.StatusOK, wantBody: "pod-a"},
		{name: "/hostname answers the hostname", path: "/hostname", wantStatus: http.StatusOK, wantBody: "pod-a"},
		{name: "/clientip answers the peer's address", path: "/clientip", wantStatus: http.StatusOK, wantBody: "192.0.2.7:40000"},
		{name: "/healthz answers ok", path: "/healthz", wantStatus: http.StatusOK, wantBody: "ok"},
		{name: "another path is not found", path: "/nope", wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.RemoteAddr = "192.0.2.7:40000"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tt.wantStatus, rec.Code)
			if tt.wantBody != "" {
				assert.Equal(t, tt.wantBody, rec.Body.String())
			}
		})
	}
}

func TestUDPAnswer(t *testing.T) {
	peer := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[fd00::7]:5353"))
	assert.Equal(t, "pod-a [fd00::7]:5353", udpAnswer("pod-a", peer))
}

func TestSortAddrs(t *testing.T) {
	tests := []struct {
		name    string
		hosts   []string
		want    []string
		wantErr bool
	}{
		{name: "addresses sort numerically, IPv4 first, without duplicates", hosts: []string{"fd00::1", "10.0.0.10", "10.0.0.9", "10.0.0.9"}, want: []string{"10.0.0.9", "10.0.0.10", "fd00::1"}},
		{name: "no address is no line", hosts: nil, want: []string{}},
		{name: "a name is an error", hosts: []string{"example"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sortAddrs(tt.hosts)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			gotText := make([]string, 0, len(got))
			for _, a := range got {
				gotText = append(gotText, a.String())
			}
			assert.Equal(t, tt.want, gotText)
		})
	}
}

// TestServeOnLoopback runs the server on loopback listeners and the client commands
// against it, as a test does through kubectl exec.
func TestServeOnLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, "pod-a", ln, udp) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done, "serve stops cleanly")
	})
	base := "http://" + ln.Addr().String()

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout func(t *testing.T, out string)
	}{
		{name: "get prints the hostname", args: []string{"get", base + "/hostname"}, wantStdout: equals("pod-a")},
		{name: "get prints the client's loopback address", args: []string{"get", base + "/clientip"}, wantStdout: func(t *testing.T, out string) {
			ap, err := netip.ParseAddrPort(out)
			require.NoError(t, err)
			assert.True(t, ap.Addr().IsLoopback(), out)
		}},
		{name: "get of a missing path fails", args: []string{"get", base + "/nope"}, wantCode: exitFailed, wantStdout: equals("")},
		{name: "connect to the HTTP port succeeds", args: []string{"connect", ln.Addr().String()}, wantStdout: equals("")},
		{name: "connect over UDP prints the answer", args: []string{"connect", "--udp", udp.LocalAddr().String()}, wantStdout: func(t *testing.T, out string) {
			assert.True(t, strings.HasPrefix(out, "pod-a 127.0.0.1:"), out)
		}},
		{name: "lookup of an address prints it", args: []string{"lookup", "127.0.0.1"}, wantStdout: equals("127.0.0.1\n")},
		{name: "an unknown command is bad usage", args: []string{"frobnicate"}, wantCode: exitBadUsage, wantStdout: equals("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, &stdout, &stderr)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", stderr.String())
			if tt.wantCode == exitFailed {
				assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line on failure: %q", stderr.String())
			}
			tt.wantStdout(t, stdout.String())
		})
	}

	t.Run("connect to a closed port fails", func(t *testing.T) {
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := closed.Addr().String()
		require.NoError(t, closed.Close())
		assert.Equal(t, exitFailed, run(t.Context(), []string{"connect", addr}, io.Discard, io.Discard))
	})
}

// equals asserts that the output is want.
func equals(want string) func(t *testing.T, out string) {
	return func(t *testing.T, out string) { assert.Equal(t, want, out) }
}
