package forwarder

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envOf is a lookup over a fixed environment, like os.LookupEnv.
func envOf(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// goodEnv is what the DaemonSet writes for a dual-stack Service, changed by tweaks;
// a tweak mapping a variable to "<unset>" removes it.
func goodEnv(tweaks map[string]string) map[string]string {
	env := map[string]string{
		EnvSrcPort:   "80",
		EnvSrcRanges: "10.1.0.0/16,fd00:1::/64",
		EnvDestProto: "TCP",
		EnvDestPort:  "8080",
		EnvDestIPs:   "10.2.0.2,fd00:2::2",
	}
	for k, v := range tweaks {
		if v == "<unset>" {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return env
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Config
	}{{
		name: "the DaemonSet's dual-stack environment parses into the base config",
		env:  goodEnv(nil),
		want: newConfig(),
	}, {
		name: "lower-case protocol is accepted as iptables -p accepts it",
		env:  goodEnv(map[string]string{EnvDestProto: "udp"}),
		want: newConfig(func(c *Config) { c.Proto = UDP }),
	}, {
		name: "SCTP is a Service protocol too",
		env:  goodEnv(map[string]string{EnvDestProto: "SCTP"}),
		want: newConfig(func(c *Config) { c.Proto = SCTP }),
	}, {
		name: "status.hostIPs with IPv6 first comes back IPv4 first",
		env:  goodEnv(map[string]string{EnvDestIPs: "fd00:2::2,10.2.0.2"}),
		want: newConfig(),
	}, {
		name: "a single ClusterIP is one destination",
		env:  goodEnv(map[string]string{EnvDestIPs: "10.43.0.10"}),
		want: newConfig(func(c *Config) { c.DestIPs = addrs("10.43.0.10") }),
	}, {
		name: "destinations are sorted numerically, not as text, and deduplicated",
		env:  goodEnv(map[string]string{EnvDestIPs: "10.0.0.10, 10.0.0.9,10.0.0.10"}),
		want: newConfig(func(c *Config) { c.DestIPs = addrs("10.0.0.9", "10.0.0.10") }),
	}, {
		name: "blanks, empty entries and a trailing comma are ignored as the script's word splitting does",
		env:  goodEnv(map[string]string{EnvSrcRanges: " 10.1.0.0/16 ,, fd00:1::/64,", EnvDestIPs: "10.2.0.2,,fd00:2::2,"}),
		want: newConfig(),
	}, {
		name: "ranges are masked to their network and deduplicated after masking",
		env:  goodEnv(map[string]string{EnvSrcRanges: "10.1.2.3/16,10.1.0.0/16"}),
		want: newConfig(func(c *Config) { c.SrcRanges = prefixes("10.1.0.0/16") }),
	}, {
		name: "a bare address in SRC_RANGES is that one host, as iptables -s reads it",
		env:  goodEnv(map[string]string{EnvSrcRanges: "192.0.2.7,2001:db8::7"}),
		want: newConfig(func(c *Config) { c.SrcRanges = prefixes("192.0.2.7/32", "2001:db8::7/128") }),
	}, {
		name: "the everyone default of a dual-stack Service keeps both families",
		env:  goodEnv(map[string]string{EnvSrcRanges: "0.0.0.0/0,::/0"}),
		want: newConfig(func(c *Config) { c.SrcRanges = prefixes("0.0.0.0/0", "::/0") }),
	}, {
		name: "ports at the top of the range parse",
		env:  goodEnv(map[string]string{EnvSrcPort: "65535", EnvDestPort: "32767"}),
		want: newConfig(func(c *Config) { c.SrcPort, c.DestPort = 65535, 32767 }),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(envOf(tt.env))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.NoError(t, got.Validate(), "ConfigFromEnv's result validates")
		})
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []problem
	}{{
		name: "an empty environment names every variable, in the DaemonSet's order",
		env:  map[string]string{},
		want: []problem{
			{Var: EnvSrcPort, Err: ErrUnset}, {Var: EnvSrcRanges, Err: ErrUnset}, {Var: EnvDestProto, Err: ErrUnset},
			{Var: EnvDestPort, Err: ErrUnset}, {Var: EnvDestIPs, Err: ErrUnset},
		},
	}, {
		name: "a blank value is empty, not unset",
		env:  goodEnv(map[string]string{EnvDestIPs: "  "}),
		want: []problem{{Var: EnvDestIPs, Err: ErrEmpty}},
	}, {
		name: "DEST_IPS of commas only has no destination",
		env:  goodEnv(map[string]string{EnvDestIPs: ",,"}),
		want: []problem{{Var: EnvDestIPs, Value: ",,", Err: ErrEmpty}},
	}, {
		name: "SRC_RANGES of commas only would accept nobody, silently",
		env:  goodEnv(map[string]string{EnvSrcRanges: ","}),
		want: []problem{{Var: EnvSrcRanges, Value: ",", Err: ErrEmpty}},
	}, {
		name: "a port that is not a number names the variable and the value",
		env:  goodEnv(map[string]string{EnvSrcPort: "http"}),
		want: []problem{{Var: EnvSrcPort, Value: "http", Err: ErrBadPort}},
	}, {
		name: "a port above 65535 is refused",
		env:  goodEnv(map[string]string{EnvSrcPort: "65536"}),
		want: []problem{{Var: EnvSrcPort, Value: "65536", Err: ErrBadPort}},
	}, {
		name: "a negative port is refused",
		env:  goodEnv(map[string]string{EnvDestPort: "-1"}),
		want: []problem{{Var: EnvDestPort, Value: "-1", Err: ErrBadPort}},
	}, {
		name: "SRC_PORT 0 is refused",
		env:  goodEnv(map[string]string{EnvSrcPort: "0"}),
		want: []problem{{Var: EnvSrcPort, Value: "0", Err: ErrBadPort}},
	}, {
		name: "DEST_PORT 0, K3s's ETP Local without node ports, is refused instead of forwarding nowhere",
		env:  goodEnv(map[string]string{EnvDestPort: "0"}),
		want: []problem{{Var: EnvDestPort, Value: "0", Err: ErrBadPort}},
	}, {
		name: "ICMP has no ports to forward",
		env:  goodEnv(map[string]string{EnvDestProto: "ICMP"}),
		want: []problem{{Var: EnvDestProto, Value: "ICMP", Err: ErrBadProtocol}},
	}, {
		name: "each bad list entry is named, and the good ones do not hide them",
		env:  goodEnv(map[string]string{EnvSrcRanges: "10.0.0.0/8,10.0.0.0/33,nope", EnvDestIPs: "10.2.0.2,10.2.0.256"}),
		want: []problem{
			{Var: EnvSrcRanges, Value: "10.0.0.0/33", Err: ErrBadRange},
			{Var: EnvSrcRanges, Value: "nope", Err: ErrBadRange},
			{Var: EnvDestIPs, Value: "10.2.0.256", Err: ErrBadDestination},
		},
	}, {
		name: "a CIDR is not a destination: the script would DNAT to ip/32/32",
		env:  goodEnv(map[string]string{EnvDestIPs: "10.2.0.2/32"}),
		want: []problem{{Var: EnvDestIPs, Value: "10.2.0.2/32", Err: ErrBadDestination}},
	}, {
		name: "unspecified, multicast, loopback, zoned and IPv4-mapped destinations are refused",
		env:  goodEnv(map[string]string{EnvDestIPs: "0.0.0.0,::,224.0.0.1,127.0.0.1,fe80::1%eth0,::ffff:10.2.0.2"}),
		want: []problem{
			{Var: EnvDestIPs, Value: "0.0.0.0", Err: ErrBadDestination},
			{Var: EnvDestIPs, Value: "::", Err: ErrBadDestination},
			{Var: EnvDestIPs, Value: "224.0.0.1", Err: ErrBadDestination},
			{Var: EnvDestIPs, Value: "127.0.0.1", Err: ErrBadDestination},
			{Var: EnvDestIPs, Value: "fe80::1%eth0", Err: ErrBadDestination},
			{Var: EnvDestIPs, Value: "::ffff:10.2.0.2", Err: ErrBadDestination},
		},
	}, {
		name: "a zoned address is not a source range",
		env:  goodEnv(map[string]string{EnvSrcRanges: "fe80::1%eth0"}),
		want: []problem{{Var: EnvSrcRanges, Value: "fe80::1%eth0", Err: ErrBadRange}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(envOf(tt.env))
			require.Error(t, err)
			assert.Equal(t, Config{}, got, "no half-parsed config")
			assert.Equal(t, tt.want, problems(t, err))
		})
	}
}

func TestEnvErrorMessageNamesVariableAndValue(t *testing.T) {
	_, err := ConfigFromEnv(envOf(goodEnv(map[string]string{EnvSrcPort: "http", EnvDestIPs: "<unset>"})))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	assert.Equal(t, []string{
		`SRC_PORT="http": not a port number from 1 to 65535`,
		`DEST_IPS: not set`,
	}, lines)
}
