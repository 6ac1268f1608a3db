package nodejoin

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/k3snet/k3snet/netpol"
)

func rule(group, resource string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
}

func TestWithRules(t *testing.T) {
	tests := []struct {
		name  string
		base  []rbacv1.PolicyRule
		extra []rbacv1.PolicyRule
		want  []rbacv1.PolicyRule
	}{
		{name: "a need the base covers adds nothing",
			base:  []rbacv1.PolicyRule{rule("", "nodes", "get", "list", "watch")},
			extra: []rbacv1.PolicyRule{rule("", "nodes", "list", "watch")},
			want:  []rbacv1.PolicyRule{rule("", "nodes", "get", "list", "watch")}},
		{name: "only the missing verbs are added",
			base:  []rbacv1.PolicyRule{rule("", "events", "create")},
			extra: []rbacv1.PolicyRule{rule("", "events", "create", "patch")},
			want:  []rbacv1.PolicyRule{rule("", "events", "create"), rule("", "events", "patch")}},
		{name: "wildcards cover",
			base:  []rbacv1.PolicyRule{rule("*", "*", "*")},
			extra: []rbacv1.PolicyRule{rule("", "nodes", "get")},
			want:  []rbacv1.PolicyRule{rule("*", "*", "*")}},
		{name: "a rule limited to names does not cover the resource",
			base:  []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, ResourceNames: []string{"a"}, Verbs: []string{"get"}}},
			extra: []rbacv1.PolicyRule{rule("", "nodes", "get")},
			want: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"nodes"}, ResourceNames: []string{"a"}, Verbs: []string{"get"}},
				rule("", "nodes", "get"),
			}},
		{name: "another group does not cover",
			base:  []rbacv1.PolicyRule{rule("events.k8s.io", "events", "create")},
			extra: []rbacv1.PolicyRule{rule("", "events", "create")},
			want:  []rbacv1.PolicyRule{rule("events.k8s.io", "events", "create"), rule("", "events", "create")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]rbacv1.PolicyRule(nil), tt.base...)
			assert.Equal(t, tt.want, withRules(tt.base, tt.extra...))
			assert.Equal(t, before, tt.base, "the base rules were changed")
		})
	}
}

func TestControllerRoleGrantsWhatTheAgentNeeds(t *testing.T) {
	rules := newControllerClusterRole().Rules
	assert.Equal(t, netpol.ClusterRole().Rules, rules[:len(netpol.ClusterRole().Rules)], "the NetworkPolicy controller's rules come first")
	for _, need := range []struct{ group, resource, verb string }{
		{"", "nodes", "get"}, {"", "nodes", "list"}, {"", "nodes", "watch"},
		{"", "events", "create"}, {"", "events", "patch"},
		{"", "pods", "list"}, {"", "namespaces", "watch"}, {"networking.k8s.io", "networkpolicies", "list"},
	} {
		assert.True(t, grants(rules, need.group, need.resource, need.verb), "%s %s/%s not granted", need.verb, need.group, need.resource)
	}
	for _, r := range rules {
		assert.NotContains(t, r.Verbs, "*")
		assert.NotContains(t, r.Resources, "secrets")
	}
}

func TestServerObjectsBindTheBootstrapPath(t *testing.T) {
	objs, err := newServerObjects(Token{CAHash: testHash, ID: "abcdef", Secret: testSecret}, AgentConfig{})
	require.NoError(t, err)
	type binding struct{ name, role, kind, subject string }
	var got []binding
	for _, b := range objs.clusterRoleBindings {
		require.Len(t, b.Subjects, 1)
		got = append(got, binding{b.Name, b.RoleRef.Name, b.Subjects[0].Kind, b.Subjects[0].Name})
	}
	assert.Equal(t, []binding{
		{"k3snet:node-bootstrapper", "system:node-bootstrapper", "Group", "system:bootstrappers"},
		{"k3snet:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", "Group", "system:bootstrappers"},
		{"k3snet:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "Group", "system:nodes"},
		{"kube-apiserver-kubelet-admin", "system:kubelet-api-admin", "User", "kube-apiserver"},
		{"system:k3s-controller", "system:k3s-controller", "User", "system:k3s-controller"},
	}, got)

	s := objs.secret
	assert.Equal(t, "kube-system", s.Namespace)
	assert.Equal(t, "bootstrap-token-abcdef", s.Name)
	assert.Equal(t, "bootstrap.kubernetes.io/token", string(s.Type))
	assert.Equal(t, "abcdef", string(s.Data["token-id"]))
	assert.Equal(t, testSecret, string(s.Data["token-secret"]))
	assert.Equal(t, "true", string(s.Data["usage-bootstrap-authentication"]))
	assert.NotContains(t, s.Data, "expiration", "the node token does not expire")

	assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
		ResourceNames: []string{"k3snet-agent-config"}, Verbs: []string{"get"}}}, objs.role.Rules)
	assert.Equal(t, []rbacv1.Subject{group("system:bootstrappers"), group("system:nodes")}, objs.roleBinding.Subjects)
}
