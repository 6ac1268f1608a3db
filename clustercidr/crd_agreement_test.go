package clustercidr

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidationAgreesWithTheCRD decodes specs as the controller will (JSON into
// ClusterCIDRSpec) and checks that ValidateClusterCIDRSpec accepts exactly what crd.yaml
// accepts. The verdicts were observed by creating each object through kube-apiserver v1.37.2
// with crd.yaml installed (2026-11-27); update them only with a new observation.
func TestValidationAgreesWithTheCRD(t *testing.T) {
	tests := []struct {
		name  string
		spec  string
		valid bool
	}{
		{"the K3s documentation's hostname example is accepted", `{"nodeSelector":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"In","values":["worker2"]}]}]},"perNodeHostBits":8,"ipv4":"10.247.0.0/16"}`, true},
		{"a dual-stack spec is accepted", `{"perNodeHostBits":8,"ipv4":"10.42.0.0/16","ipv6":"fd00:42::/56"}`, true},
		{"an IPv6-only spec with 64 host bits is accepted", `{"perNodeHostBits":64,"ipv6":"fd00::/64"}`, true},
		{"an empty ipv6 string counts as absent", `{"perNodeHostBits":8,"ipv4":"10.42.0.0/16","ipv6":""}`, true},
		{"a Gt requirement with an integer is accepted", `{"nodeSelector":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"rack","operator":"Gt","values":["5"]}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, true},
		{"ORed terms mixing matchFields and DoesNotExist are accepted", `{"nodeSelector":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"NotIn","values":["w1"]}]},{"matchExpressions":[{"key":"a","operator":"DoesNotExist"}]}]},"perNodeHostBits":4,"ipv4":"10.1.0.0/28"}`, true},
		{"the whole IPv6 space with 124 host bits is accepted", `{"perNodeHostBits":124,"ipv6":"::/0"}`, true},
		{"a spec without any CIDR is rejected", `{"perNodeHostBits":8}`, false},
		{"two empty CIDR strings are rejected", `{"perNodeHostBits":8,"ipv4":"","ipv6":""}`, false},
		{"an IPv6 CIDR in ipv4 is rejected", `{"perNodeHostBits":8,"ipv4":"fd00::/64"}`, false},
		{"an IPv4 CIDR in ipv6 is rejected", `{"perNodeHostBits":8,"ipv6":"10.0.0.0/8"}`, false},
		{"a CIDR with host bits set is rejected", `{"perNodeHostBits":8,"ipv4":"10.0.0.1/16"}`, false},
		{"an address without a prefix length is rejected", `{"perNodeHostBits":8,"ipv4":"10.0.0.0"}`, false},
		{"fewer than 4 host bits are rejected", `{"perNodeHostBits":3,"ipv4":"10.0.0.0/16"}`, false},
		{"more host bits than the IPv4 prefix has are rejected", `{"perNodeHostBits":5,"ipv4":"10.0.0.0/28"}`, false},
		{"host bits that fit IPv6 but not IPv4 are rejected", `{"perNodeHostBits":64,"ipv4":"10.0.0.0/24","ipv6":"fd00::/56"}`, false},
		{"an IPv4-mapped IPv6 CIDR is rejected", `{"perNodeHostBits":8,"ipv6":"::ffff:10.0.0.0/104"}`, false},
		{"a selector without terms is rejected", `{"nodeSelector":{"nodeSelectorTerms":[]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"an empty term is rejected", `{"nodeSelector":{"nodeSelectorTerms":[{}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"In without values is rejected", `{"nodeSelector":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"a","operator":"In"}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"Exists with values is rejected", `{"nodeSelector":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"Gt with a non-integer is rejected", `{"nodeSelector":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"a","operator":"Gt","values":["x"]}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"Lt with two values is rejected", `{"nodeSelector":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"a","operator":"Lt","values":["1","2"]}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"an unknown operator is rejected", `{"nodeSelector":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"a","operator":"Near","values":["x"]}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"a label key that is not a qualified name is rejected", `{"nodeSelector":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"bad key!","operator":"Exists"}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"matchFields on a field other than metadata.name are rejected", `{"nodeSelector":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.uid","operator":"In","values":["x"]}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"matchFields with Exists are rejected", `{"nodeSelector":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"Exists","values":["x"]}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"matchFields with two values are rejected", `{"nodeSelector":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["x","y"]}]}]},"perNodeHostBits":8,"ipv4":"10.1.0.0/16"}`, false},
		{"a spec without perNodeHostBits is rejected", `{"ipv4":"10.1.0.0/16"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec ClusterCIDRSpec
			require.NoError(t, json.Unmarshal([]byte(tt.spec), &spec))
			err := ValidateClusterCIDRSpec(spec)
			if tt.valid {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalidClusterCIDR)
			}
		})
	}
}
