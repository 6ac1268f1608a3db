package controlplane

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAPIServerListen(t *testing.T) {
	addr := netip.MustParseAddr
	for _, tc := range []struct {
		name       string
		cfg        Config
		wantArgs   []string
		wantClient string
		wantIPs    []string
	}{{
		name: "no addresses: loopback only, nothing published",
		wantArgs: []string{"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
			"--endpoint-reconciler-type=none"},
		wantClient: "127.0.0.1",
		wantIPs:    []string{"127.0.0.1"},
	}, {
		name:       "a real node's address: every address, the node's published",
		cfg:        Config{AdvertiseAddress: addr("10.0.0.5")},
		wantArgs:   []string{"--bind-address=0.0.0.0", "--advertise-address=10.0.0.5"},
		wantClient: "10.0.0.5",
		wantIPs:    []string{"10.0.0.5"},
	}, {
		name:       "a specific bind address is where clients go",
		cfg:        Config{AdvertiseAddress: addr("10.0.0.5"), BindAddress: addr("192.168.1.2")},
		wantArgs:   []string{"--bind-address=192.168.1.2", "--advertise-address=10.0.0.5"},
		wantClient: "192.168.1.2",
		wantIPs:    []string{"10.0.0.5", "192.168.1.2"},
	}, {
		name: "every address without an advertise address publishes nothing",
		cfg:  Config{BindAddress: netip.IPv4Unspecified()},
		wantArgs: []string{"--bind-address=0.0.0.0", "--advertise-address=127.0.0.1",
			"--endpoint-reconciler-type=none"},
		wantClient: "127.0.0.1",
	}, {
		name:       "the NodePort range and extra serving addresses",
		cfg:        Config{AdvertiseAddress: addr("fd00::5"), ServiceNodePortRange: "20000-22767", ServingIPs: []netip.Addr{addr("203.0.113.9"), addr("fd00::5")}},
		wantArgs:   []string{"--bind-address=0.0.0.0", "--advertise-address=fd00::5", "--service-node-port-range=20000-22767"},
		wantClient: "fd00::5",
		wantIPs:    []string{"fd00::5", "203.0.113.9"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			l := apiServerListen(tc.cfg)
			assert.Equal(t, tc.wantArgs, l.args(tc.cfg.ServiceNodePortRange))
			assert.Equal(t, tc.wantClient, l.client.String())
			var ips []string
			for _, ip := range l.servingIPs(tc.cfg.ServingIPs) {
				ips = append(ips, ip.String())
			}
			assert.Equal(t, tc.wantIPs, ips)
		})
	}
}

func TestServingCertificateFollowsItsNames(t *testing.T) {
	dir := t.TempDir()
	service := netip.MustParseAddr("10.43.0.1")
	serving := func(names servingNames) *keyPair {
		t.Helper()
		_, err := newPKI(dir, service, names)
		require.NoError(t, err)
		kp, err := loadKeyPair(dir, "serving-kube-apiserver")
		require.NoError(t, err)
		return kp
	}
	first := serving(servingNames{dns: []string{"server-1"}})
	ca, err := loadKeyPair(dir, "ca")
	require.NoError(t, err)

	same := serving(servingNames{dns: []string{"server-1"}})
	assert.Equal(t, first.certPEM, same.certPEM, "a restart with the same names keeps the certificate")

	added := serving(servingNames{dns: []string{"server-1", "k3s.example.com"}, ips: []netip.Addr{netip.MustParseAddr("203.0.113.9")}})
	assert.NotEqual(t, first.certPEM, added.certPEM)
	assert.Contains(t, added.cert.DNSNames, "k3s.example.com")
	assert.Contains(t, ipStrings(added.cert), "203.0.113.9")

	removed := serving(servingNames{dns: []string{"server-1"}})
	assert.NotContains(t, removed.cert.DNSNames, "k3s.example.com", "a SAN no longer asked for is dropped")
	assert.NotContains(t, ipStrings(removed.cert), "203.0.113.9")
	assert.Contains(t, ipStrings(removed.cert), "10.43.0.1")

	caAfter, err := loadKeyPair(dir, "ca")
	require.NoError(t, err)
	assert.Equal(t, ca.certPEM, caAfter.certPEM, "reissuing the serving certificate keeps the CA")
	assert.NoError(t, removed.cert.CheckSignatureFrom(ca.cert))
}
