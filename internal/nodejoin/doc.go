// Package nodejoin is how a node joins a k3snet cluster: K3s's node token and agent join, done
// with Kubernetes' own mechanisms instead of K3s's supervisor protocol.
//
// A K3s server writes <data-dir>/server/node-token as K10<CA hash>::<credentials>, and an agent
// given --server and --token first checks the server's CA against the hash, then uses the
// credentials. Here the credentials are a Kubernetes bootstrap token (<id>.<secret>, the
// kubeadm format), which kube-apiserver authenticates as system:bootstrap:<id> in group
// system:bootstrappers when it runs with --enable-bootstrap-token-auth. Everything after the
// CA check is standard Kubernetes:
//
//   - the kubelet gets its client certificate through its own TLS bootstrap (a
//     kubernetes.io/kube-apiserver-client-kubelet CSR that kube-controller-manager's
//     csrapproving controller approves, given the bindings EnsureServerObjects creates);
//   - kube-proxy and the agent's node-local controllers (user system:k3s-controller) get
//     theirs through kubernetes.io/kube-apiserver-client CSRs that the Approver approves when
//     they ask for exactly those identities, and kube-controller-manager signs;
//   - the cluster settings K3s's supervisor hands every agent (cluster CIDRs, cluster DNS,
//     disabled components) come from a ConfigMap the token may read.
//
// Server side: LoadOrCreateToken, EnsureServerObjects and the Approver. Agent side: ParseToken
// and Join. The server's own agent needs none of this: the server issues its certificates from
// the CA directly, as K3s's does.
package nodejoin
