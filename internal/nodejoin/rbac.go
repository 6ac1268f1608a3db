package nodejoin

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3snet/k3snet/netpol"
)

// Identities and groups nodes use.
const (
	// BootstrappersGroup is the group kube-apiserver puts every bootstrap token's user in.
	BootstrappersGroup = "system:bootstrappers"
	// NodesGroup is the group of kubelets' client certificates (O=system:nodes).
	NodesGroup = "system:nodes"
	// KubeProxyUser is kube-proxy's user; Kubernetes' default policy binds it to
	// system:node-proxier (ClusterRoleBinding system:node-proxier).
	KubeProxyUser = "system:kube-proxy"
	// ControllerUser is the user of an agent's node-local controllers, K3s's name for it.
	ControllerUser = "system:k3s-controller"
	// KubeAPIServerUser is the user kube-apiserver's client certificate names towards
	// kubelets (logs, exec, port-forward), K3s's name for it.
	KubeAPIServerUser = "kube-apiserver"
)

// Names of the RBAC objects EnsureServerObjects keeps. The system:k3s-controller and
// kube-apiserver-kubelet-admin names are K3s's, so a cluster moved from K3s keeps one object
// of each; the others are ours, in place of kubeadm's kubeadm:* bindings.
const (
	// ControllerClusterRoleName names the ClusterRole and ClusterRoleBinding of ControllerUser.
	ControllerClusterRoleName = "system:k3s-controller"
	// KubeletAPIAdminBindingName binds KubeAPIServerUser to system:kubelet-api-admin.
	KubeletAPIAdminBindingName = "kube-apiserver-kubelet-admin"
	// NodeBootstrapperBindingName lets bootstrap tokens create CSRs.
	NodeBootstrapperBindingName = "k3snet:node-bootstrapper"
	// NodeAutoApproveBindingName lets kube-controller-manager approve the kubelet client CSR
	// a bootstrap token creates.
	NodeAutoApproveBindingName = "k3snet:node-autoapprove-bootstrap"
	// NodeAutoApproveRenewalBindingName lets kube-controller-manager approve the CSR a kubelet
	// creates to renew its own client certificate.
	NodeAutoApproveRenewalBindingName = "k3snet:node-autoapprove-certificate-rotation"
	// AgentConfigReaderName names the Role and RoleBinding that let bootstrap tokens and
	// nodes read the agent ConfigMap.
	AgentConfigReaderName = "k3snet:agent-config-reader"
	// ApproverClusterRoleName is the name of ApproverClusterRole's role.
	ApproverClusterRoleName = "k3snet:nodejoin-approver"
)

// ClusterRoles of Kubernetes' default RBAC policy that the bindings refer to.
const (
	nodeBootstrapperRole = "system:node-bootstrapper"
	nodeClientRole       = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	selfNodeClientRole   = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
	kubeletAPIAdminRole  = "system:kubelet-api-admin"
)

// ApproverClusterRole returns the least-privilege ClusterRole the Approver needs: it watches
// CSRs, writes their approval subresource, may approve for the one signer it handles (the
// CSR approval admission checks the "approve" verb on the signer), and records Events.
func ApproverClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   typeMeta(rbacv1.SchemeGroupVersion.String(), "ClusterRole"),
		ObjectMeta: metav1.ObjectMeta{Name: ApproverClusterRoleName},
		Rules: []rbacv1.PolicyRule{
			// The shared informer lists and watches CSRs; sync reads only from its cache.
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests/approval"}, Verbs: []string{"update"}},
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"}, ResourceNames: []string{signerAPIServerClient}, Verbs: []string{"approve"}},
			// Warning Events on denied CSRs; the recorder patches repeated ones.
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
}

// newControllerClusterRole is the role of ControllerUser: what the agent's node-local
// controllers do with it. The NetworkPolicy controller's own role comes first; the agent
// itself also watches Nodes (it routes other nodes' pod CIDRs) and records Events.
func newControllerClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   typeMeta(rbacv1.SchemeGroupVersion.String(), "ClusterRole"),
		ObjectMeta: objectMeta("", ControllerClusterRoleName),
		Rules: withRules(netpol.ClusterRole().Rules,
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		),
	}
}

// withRules returns base plus, for each extra rule, the verbs base does not already grant on
// all of the rule's resources, so a need that base covers adds no duplicate rule. Extra rules
// name API groups and resources, without resourceNames.
func withRules(base []rbacv1.PolicyRule, extra ...rbacv1.PolicyRule) []rbacv1.PolicyRule {
	out := slices.Clone(base)
	for _, e := range extra {
		var missing []string
		for _, verb := range e.Verbs {
			for _, group := range e.APIGroups {
				if !slices.ContainsFunc(e.Resources, func(res string) bool { return !grants(base, group, res, verb) }) {
					continue
				}
				if !slices.Contains(missing, verb) {
					missing = append(missing, verb)
				}
			}
		}
		if len(missing) > 0 {
			r := *e.DeepCopy()
			r.Verbs = missing
			out = append(out, r)
		}
	}
	return out
}

// grants reports whether one of rules grants verb on every object of resource in group, as
// the RBAC authorizer matches rules (with "*" wildcards; a rule limited to resourceNames does
// not grant the whole resource).
func grants(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	has := func(list []string, v string) bool {
		return slices.Contains(list, v) || slices.Contains(list, rbacv1.ResourceAll)
	}
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
		return len(r.ResourceNames) == 0 && has(r.APIGroups, group) && has(r.Resources, resource) && has(r.Verbs, verb)
	})
}

// newClusterRoleBinding binds subjects to the ClusterRole role.
func newClusterRoleBinding(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta(rbacv1.SchemeGroupVersion.String(), "ClusterRoleBinding"),
		ObjectMeta: objectMeta("", name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
}

// newAgentConfigRole lets its subjects get the agent ConfigMap and nothing else.
func newAgentConfigRole() *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   typeMeta(rbacv1.SchemeGroupVersion.String(), "Role"),
		ObjectMeta: objectMeta(AgentConfigNamespace, AgentConfigReaderName),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{AgentConfigName}, Verbs: []string{"get"}},
		},
	}
}

// newAgentConfigRoleBinding gives the agent config Role to joining agents (their bootstrap
// token) and to joined nodes (their kubelet's certificate), so a restarted agent can read
// the settings again without the token.
func newAgentConfigRoleBinding() *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   typeMeta(rbacv1.SchemeGroupVersion.String(), "RoleBinding"),
		ObjectMeta: objectMeta(AgentConfigNamespace, AgentConfigReaderName),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: AgentConfigReaderName},
		Subjects:   []rbacv1.Subject{group(BootstrappersGroup), group(NodesGroup)},
	}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: name}
}

func user(name string) rbacv1.Subject {
	return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}
}
