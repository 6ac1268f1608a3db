package clustercidr

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

// fieldsOf returns the Field of every FieldError joined in err.
func fieldsOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe.Field)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

func TestValidateClusterCIDRSpec(t *testing.T) {
	const terms = "spec.nodeSelector.nodeSelectorTerms"
	tests := []struct {
		name       string
		spec       ClusterCIDRSpec
		wantFields []string // nil: valid
	}{
		{"the K3s documentation's example is valid", ccSpec("10.247.0.0/16", "", 8, selecting(term(in("kubernetes.io/hostname", "worker2")))), nil},
		{"a dual-stack spec whose host bits fit both families is valid", ccSpec("10.42.0.0/16", "fd00:42::/56", 8), nil},
		{"an IPv6-only spec may use up to 128 minus its prefix length", ccSpec("", "fd00::/64", 64), nil},
		{"host bits equal to the IPv4 host bits are valid", ccSpec("10.0.0.0/28", "", 4), nil},
		{"a spec without any CIDR is invalid", ccSpec("", "", 8), []string{"spec"}},
		{"an unparsable IPv4 CIDR is invalid", ccSpec("10.0.0/8", "", 8), []string{"spec.ipv4"}},
		{"an address without a prefix length is not a CIDR", ccSpec("10.0.0.0", "", 8), []string{"spec.ipv4"}},
		{"an IPv6 CIDR in ipv4 is invalid", ccSpec("fd00::/64", "", 8), []string{"spec.ipv4"}},
		{"an IPv4 CIDR in ipv6 is invalid", ccSpec("", "10.0.0.0/8", 8), []string{"spec.ipv6"}},
		{"an IPv4-mapped IPv6 CIDR is not IPv6", ccSpec("", "::ffff:10.0.0.0/104", 8), []string{"spec.ipv6"}},
		{"a CIDR with host bits set is invalid", ccSpec("10.0.0.1/16", "", 8), []string{"spec.ipv4"}},
		{"fewer than 4 host bits is invalid", ccSpec("10.0.0.0/16", "", 3), []string{"spec.perNodeHostBits"}},
		{"more host bits than IPv4 has is invalid", ccSpec("10.0.0.0/28", "", 5), []string{"spec.perNodeHostBits"}},
		{
			"one host-bit value must fit both families: /24 + /64 cannot give IPv6 its /64 blocks",
			ccSpec("10.0.0.0/24", "fd00::/56", 64), []string{"spec.perNodeHostBits"},
		},
		{
			"every broken rule is reported at once",
			ccSpec("10.0.0.1/8", "nope", 2), []string{"spec.ipv4", "spec.ipv6", "spec.perNodeHostBits"},
		},
		{"a selector without terms is invalid", ccSpec("10.0.0.0/8", "", 8, selecting()), []string{terms}},
		{"an empty term is invalid", ccSpec("10.0.0.0/8", "", 8, selecting(term())), []string{terms + "[0]"}},
		{"In without values is invalid", ccSpec("10.0.0.0/8", "", 8, selecting(term(in("zone")))), []string{terms + "[0].matchExpressions[0].values"}},
		{"NotIn without values is invalid", ccSpec("10.0.0.0/8", "", 8, selecting(term(notIn("zone")))), []string{terms + "[0].matchExpressions[0].values"}},
		{"Exists with values is invalid", ccSpec("10.0.0.0/8", "", 8, selecting(term(req("a", corev1.NodeSelectorOpExists, "x")))), []string{terms + "[0].matchExpressions[0].values"}},
		{"DoesNotExist with values is invalid", ccSpec("10.0.0.0/8", "", 8, selecting(term(req("a", corev1.NodeSelectorOpDoesNotExist, "x")))), []string{terms + "[0].matchExpressions[0].values"}},
		{"Gt with two values is invalid", ccSpec("10.0.0.0/8", "", 8, selecting(term(req("a", corev1.NodeSelectorOpGt, "1", "2")))), []string{terms + "[0].matchExpressions[0].values"}},
		{"Lt with a value that is not an integer is invalid", ccSpec("10.0.0.0/8", "", 8, selecting(term(req("a", corev1.NodeSelectorOpLt, "x")))), []string{terms + "[0].matchExpressions[0].values"}},
		{"an unknown operator is invalid", ccSpec("10.0.0.0/8", "", 8, selecting(term(req("a", "Near", "x")))), []string{terms + "[0].matchExpressions[0].operator"}},
		{"a label key that is not a qualified name is invalid", ccSpec("10.0.0.0/8", "", 8, selecting(term(exists("bad key!")))), []string{terms + "[0].matchExpressions[0].key"}},
		{
			"matchFields accept only metadata.name",
			ccSpec("10.0.0.0/8", "", 8, selecting(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{in("metadata.uid", "x")}})),
			[]string{terms + "[0].matchFields[0].key"},
		},
		{"matchFields accept only In and NotIn", ccSpec("10.0.0.0/8", "", 8, selecting(term(req(nodeNameField, corev1.NodeSelectorOpExists, "x")))), []string{terms + "[0].matchFields[0].operator"}},
		{"matchFields take exactly one value", ccSpec("10.0.0.0/8", "", 8, selecting(term(req(nodeNameField, corev1.NodeSelectorOpIn, "a", "b")))), []string{terms + "[0].matchFields[0].values"}},
		{
			"errors in the second term name its index",
			ccSpec("10.0.0.0/8", "", 8, selecting(term(exists("a")), term(exists("b"), in("c")))), []string{terms + "[1].matchExpressions[1].values"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateClusterCIDRSpec(tt.spec)
			if tt.wantFields == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrInvalidClusterCIDR)
			assert.Equal(t, tt.wantFields, fieldsOf(err))
			var fe *FieldError
			assert.True(t, errors.As(err, &fe))
		})
	}
}
