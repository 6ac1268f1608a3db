package packaged

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVarsReplacements(t *testing.T) {
	tests := []struct {
		name string
		vars Vars
		want map[string]string
	}{
		{
			name: "the zero value gives K3s's defaults",
			vars: Vars{},
			want: map[string]string{
				varClusterDNS: "10.43.0.10", varClusterDNSList: "[10.43.0.10]", varClusterDNSIPFamilyPolicy: "SingleStack",
				varClusterDomain: "cluster.local", varSystemDefaultRegistry: "", varSystemDefaultRegistryRaw: "",
			},
		},
		{
			name: "two cluster DNS addresses require dual-stack and list both",
			vars: Vars{ClusterDNS: []netip.Addr{netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("fd00::a")}, ClusterDomain: "example.org"},
			want: map[string]string{
				varClusterDNS: "10.0.0.10", varClusterDNSList: "[10.0.0.10,fd00::a]", varClusterDNSIPFamilyPolicy: "RequireDualStack",
				varClusterDomain: "example.org", varSystemDefaultRegistry: "", varSystemDefaultRegistryRaw: "",
			},
		},
		{
			name: "a registry is a prefix with a slash and raw without, even when given with one",
			vars: Vars{SystemDefaultRegistry: "registry.example.com:5000/"},
			want: map[string]string{
				varClusterDNS: "10.43.0.10", varClusterDNSList: "[10.43.0.10]", varClusterDNSIPFamilyPolicy: "SingleStack",
				varClusterDomain: "cluster.local", varSystemDefaultRegistry: "registry.example.com:5000/", varSystemDefaultRegistryRaw: "registry.example.com:5000",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.vars.Validate())
			assert.Equal(t, tt.want, tt.vars.replacements())
		})
	}
}

func TestVarsValidate(t *testing.T) {
	v4, v4b, v6 := netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("10.0.0.11"), netip.MustParseAddr("fd00::a")
	tests := []struct {
		name    string
		vars    Vars
		wantErr bool
	}{
		{name: "one address is valid", vars: Vars{ClusterDNS: []netip.Addr{v4}}},
		{name: "one address per family is valid", vars: Vars{ClusterDNS: []netip.Addr{v6, v4}}},
		{name: "two addresses of one family are rejected", vars: Vars{ClusterDNS: []netip.Addr{v4, v4b}}, wantErr: true},
		{name: "three addresses are rejected", vars: Vars{ClusterDNS: []netip.Addr{v4, v6, v4b}}, wantErr: true},
		{name: "an invalid address is rejected", vars: Vars{ClusterDNS: []netip.Addr{{}}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.vars.Validate()
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestRenderReplacesEveryOccurrence(t *testing.T) {
	got := render([]byte("a %{X}% b %{X}% %{Y}% %{Z}%"), map[string]string{"%{X}%": "1", "%{Y}%": "2"})
	assert.Equal(t, "a 1 b 1 2 %{Z}%", string(got), "unknown keys stay, as %{KUBERNETES_API}% must: the HelmChart controller resolves it")
}
