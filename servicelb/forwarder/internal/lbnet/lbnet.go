// Package lbnet builds the network the forwarder's dataplane tests send packets
// through: an LB pod's network namespace between a client, a client outside the
// Service's source ranges, and a backend that owns the destination addresses.
//
//	client   10.10.1.2  fd10:1::2 ─┐
//	                               ├─ lb  10.10.1.1 fd10:1::1 | 10.10.3.1 fd10:3::1 | 10.10.2.1 fd10:2::1
//	outsider 10.10.3.2  fd10:3::2 ─┘        │
//	backend  10.10.2.2  10.10.2.3  fd10:2::2 ┘ (no route back: only MASQUERADE makes replies work)
//
// Only addresses inside these namespaces ever receive traffic.
package lbnet

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/k3snet/k3snet/internal/netns"
)

// Net is the test network. Every namespace is deleted when the test ends.
type Net struct {
	// Client is inside SRC_RANGES; Outsider is not.
	Client, Outsider *netns.Namespace
	// LB is the LB pod's netns, where the forwarder runs, with forwarding on.
	LB *netns.Namespace
	// Backend owns the destinations.
	Backend *netns.Namespace

	// ClientRange4 and ClientRange6 are the client's links: what SRC_RANGES allows.
	ClientRange4, ClientRange6 netip.Prefix
	// LBForClient4 and LBForClient6 are the LB pod's addresses as the client reaches them.
	LBForClient4, LBForClient6 netip.Addr
	// LBForOutsider4 and LBForOutsider6 are the LB pod's addresses as the outsider reaches them.
	LBForOutsider4, LBForOutsider6 netip.Addr
	// Backend4, Backend4b and Backend6 are the backend's addresses: the destinations.
	Backend4, Backend4b, Backend6 netip.Addr
}

// Require skips t, naming what is missing, unless the process is root and has the
// tools the network and the forwarder need. Under CI (CI set) it fails t instead,
// so a CI machine that lost a tool does not pass silently.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	if err := netns.CheckPrerequisites(); err != nil {
		missing = append(missing, err.Error())
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" not on PATH")
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "forwarder dataplane test needs " + strings.Join(missing, "; ")
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this fails instead of skipping)", msg)
	}
	t.Skip("skipping: " + msg)
}

// New builds the network for t.
func New(t *testing.T) *Net {
	t.Helper()
	Require(t)
	ctx := t.Context()
	n := &Net{
		Client:   netns.NewT(t, "client"),
		Outsider: netns.NewT(t, "outsider"),
		LB:       netns.NewT(t, "lb"),
		Backend:  netns.NewT(t, "backend"),

		ClientRange4:   netip.MustParsePrefix("10.10.1.0/24"),
		ClientRange6:   netip.MustParsePrefix("fd10:1::/64"),
		LBForClient4:   netip.MustParseAddr("10.10.1.1"),
		LBForClient6:   netip.MustParseAddr("fd10:1::1"),
		LBForOutsider4: netip.MustParseAddr("10.10.3.1"),
		LBForOutsider6: netip.MustParseAddr("fd10:3::1"),
		Backend4:       netip.MustParseAddr("10.10.2.2"),
		Backend4b:      netip.MustParseAddr("10.10.2.3"),
		Backend6:       netip.MustParseAddr("fd10:2::2"),
	}
	// The DaemonSet sets these sysctls on the pod.
	if err := n.LB.EnableForwarding(); err != nil {
		t.Fatal(err)
	}
	link := func(peer *netns.Namespace, lbSide string, lbAddrs, peerAddrs []string, route bool) {
		lbEnd, peerEnd, err := n.LB.AddVeth(ctx, lbSide, peer, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range lbAddrs {
			if err := lbEnd.AddAddr(ctx, netip.MustParsePrefix(a)); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range peerAddrs {
			if err := peerEnd.AddAddr(ctx, netip.MustParsePrefix(a)); err != nil {
				t.Fatal(err)
			}
		}
		if !route {
			return
		}
		for _, a := range lbAddrs {
			if err := peer.AddDefaultRoute(ctx, netip.MustParsePrefix(a).Addr()); err != nil {
				t.Fatal(err)
			}
		}
	}
	link(n.Client, "client0", []string{"10.10.1.1/24", "fd10:1::1/64"}, []string{"10.10.1.2/24", "fd10:1::2/64"}, true)
	link(n.Outsider, "outside0", []string{"10.10.3.1/24", "fd10:3::1/64"}, []string{"10.10.3.2/24", "fd10:3::2/64"}, true)
	link(n.Backend, "backend0", []string{"10.10.2.1/24", "fd10:2::1/64"}, []string{"10.10.2.2/24", "10.10.2.3/24", "fd10:2::2/64"}, false)
	return n
}

// Serve starts a TCP and a UDP echo server on each address, on port, in the backend.
func (n *Net) Serve(t *testing.T, port uint16, addrs ...netip.Addr) {
	t.Helper()
	for _, a := range addrs {
		for _, proto := range []netns.Proto{netns.TCP, netns.UDP} {
			srv, err := n.Backend.Serve(t.Context(), proto, netip.AddrPortFrom(a, port))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
		}
	}
}

// Save returns what iptables-save and ip6tables-save print in the LB namespace,
// with the -legacy variants' output too when they exist, without comment lines
// (they carry timestamps). With counters, each rule starts with [packets:bytes].
func (n *Net) Save(ctx context.Context, counters bool) (string, error) {
	var b strings.Builder
	for _, tool := range []string{"iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		args := []string{}
		if counters {
			args = append(args, "-c")
		}
		out, err := n.LB.Exec(ctx, tool, args...)
		if err != nil {
			return "", fmt.Errorf("saving rules in %s: %w", n.LB, err)
		}
		for _, line := range strings.Split(out, "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				b.WriteString(tool + ": " + line + "\n")
			}
		}
	}
	return b.String(), nil
}

// Grep returns the lines of saved that contain s.
func Grep(saved, s string) []string {
	var out []string
	for _, line := range strings.Split(saved, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}
