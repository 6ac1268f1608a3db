package main

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"

	"github.com/k3snet/k3snet/internal/compose"
)

func TestAPIServerAddresses(t *testing.T) {
	addr := netip.MustParseAddr
	node := []netip.Addr{addr("10.0.0.5")}
	for _, tc := range []struct {
		name                  string
		cfg                   config
		wantBind, wantAdverts string // "invalid" for the zero address
	}{
		{name: "kwok node, nothing asked: loopback only", cfg: config{disableAgent: true, nodeIPs: node}, wantBind: "invalid IP", wantAdverts: "invalid IP"},
		{name: "real node: its IP", cfg: config{nodeIPs: node}, wantBind: "invalid IP", wantAdverts: "10.0.0.5"},
		{name: "real node: its external IP first, as K3s", cfg: config{nodeIPs: node, nodeExternalIPs: []netip.Addr{addr("203.0.113.5")}}, wantBind: "invalid IP", wantAdverts: "203.0.113.5"},
		{name: "--advertise-address wins", cfg: config{nodeIPs: node, advertiseAddress: addr("10.0.0.99")}, wantBind: "invalid IP", wantAdverts: "10.0.0.99"},
		{name: "kwok node with --advertise-address", cfg: config{disableAgent: true, advertiseAddress: addr("10.0.0.99")}, wantBind: "invalid IP", wantAdverts: "10.0.0.99"},
		{name: "kwok node bound to every address advertises the node IP", cfg: config{disableAgent: true, nodeIPs: node, bindAddress: netip.IPv4Unspecified()}, wantBind: "0.0.0.0", wantAdverts: "10.0.0.5"},
		{name: "kwok node bound to one address advertises it", cfg: config{disableAgent: true, nodeIPs: node, bindAddress: addr("192.168.7.7")}, wantBind: "192.168.7.7", wantAdverts: "192.168.7.7"},
		{name: "kwok node bound to loopback publishes nothing", cfg: config{disableAgent: true, nodeIPs: node, bindAddress: addr("127.0.0.1")}, wantBind: "127.0.0.1", wantAdverts: "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bind, advertise := apiServerAddresses(&tc.cfg)
			assert.Equal(t, tc.wantBind, bind.String())
			assert.Equal(t, tc.wantAdverts, advertise.String())
		})
	}
}

func TestServingSANs(t *testing.T) {
	addr := netip.MustParseAddr
	ips, dns := servingSANs(&config{
		nodeName: "server-1", nodeIPs: []netip.Addr{addr("10.0.0.5")}, nodeExternalIPs: []netip.Addr{addr("203.0.113.5")},
		tlsSANs: []string{"k3s.example.com", "203.0.113.5", "fd00::1", "server-1"},
	})
	assert.Equal(t, []netip.Addr{addr("10.0.0.5"), addr("203.0.113.5"), addr("fd00::1")}, ips)
	assert.Equal(t, []string{"server-1", "k3s.example.com"}, dns)

	ips, dns = servingSANs(&config{nodeName: "kwok-1", disableAgent: true})
	assert.Empty(t, ips, "a simulated node without --node-ip has no address of its own")
	assert.Equal(t, []string{"kwok-1"}, dns)
}

func TestKubeconfigServerURL(t *testing.T) {
	assert.Equal(t, "https://127.0.0.1:6443", kubeconfigServerURL(netip.Addr{}, 6443))
	assert.Equal(t, "https://127.0.0.1:6443", kubeconfigServerURL(netip.IPv4Unspecified(), 6443))
	assert.Equal(t, "https://127.0.0.1:7443", kubeconfigServerURL(netip.IPv6Unspecified(), 7443))
	assert.Equal(t, "https://192.168.7.7:6443", kubeconfigServerURL(netip.MustParseAddr("192.168.7.7"), 6443))
	assert.Equal(t, "https://[fd00::7]:6443", kubeconfigServerURL(netip.MustParseAddr("fd00::7"), 6443))
}

func TestNodeIPFrom(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ip     net.IP
		err    error
		expect string
	}{
		{name: "the default route's interface", ip: net.ParseIP("192.168.1.20"), expect: "192.168.1.20"},
		{name: "an IPv6-only host", ip: net.ParseIP("2001:db8::20"), expect: "2001:db8::20"},
		{name: "IPv4 in IPv6 form", ip: net.ParseIP("10.1.2.3").To16(), expect: "10.1.2.3"},
		{name: "no default route", err: errors.New("no route"), expect: "127.0.0.1"},
		{name: "a link-local address is no node IP", ip: net.ParseIP("169.254.1.1"), expect: "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := nodeIPFrom(func() (net.IP, error) { return tc.ip, tc.err })
			assert.Equal(t, tc.expect, got.String())
		})
	}
}

func TestRegistrationLabelsAndTaints(t *testing.T) {
	assert.Equal(t, map[string]string{"tier": "edge", "example.com/empty": ""},
		registrationLabels([]string{"tier=edge", "example.com/empty="}))
	assert.Equal(t, []corev1.Taint{
		{Key: "CriticalAddonsOnly", Value: "true", Effect: corev1.TaintEffectNoExecute},
		{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule},
	}, registrationTaints([]string{"CriticalAddonsOnly=true:NoExecute", "dedicated:NoSchedule"}))
}

func TestNodePortRange(t *testing.T) {
	assert.Equal(t, compose.NodePortRange{First: 20000, Last: 20999}, nodePortRange("20000-20999"))
	assert.Equal(t, compose.NodePortRange{First: 30000, Last: 32767}, nodePortRange("30000-32767"))
	assert.Equal(t, compose.NodePortRange{}, nodePortRange(""), "K3s's default")
}
