package compose

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Names and labels of cmd/k3snet's manifests that its uninstall relies on; deploy/ builds its
// objects from these.
const (
	// UninstallFinalizer keeps the ServiceAccounts and RBAC objects of k3snet while its pods
	// clean up after a `kubectl delete -k`: without it the pods would lose their identity and
	// rights before they could remove their rules, sets and DaemonSets.
	UninstallFinalizer = "k3snet.io/uninstall"
	// PartOfLabel, with the value PartOfValue, marks every object UninstallFinalizer protects.
	PartOfLabel = "app.kubernetes.io/part-of"
	PartOfValue = "k3snet"
	// NameLabel names the component of a pod: NodeAppName or ControllersAppName.
	NameLabel          = "app.kubernetes.io/name"
	NodeAppName        = "k3snet-node"
	ControllersAppName = "k3snet-controllers"

	// DefaultNamespace holds the Deployment, the DaemonSet, their ServiceAccounts and Leases.
	DefaultNamespace = "k3snet-system"
	// ControllersServiceAccount and NodeServiceAccount are the identities of the two modes.
	ControllersServiceAccount = "k3snet-controllers"
	NodeServiceAccount        = "k3snet-node"
)

// UninstallTimeout bounds a pod's cleanup at SIGTERM. A ServiceAccount token stops working 60 s
// after its ServiceAccount is marked for deletion, so the cleanup must end before that; the
// manifests give the pods a 60 s termination grace period.
const UninstallTimeout = 50 * time.Second

// ServiceAccountRef names the ServiceAccount a pod runs as, from the downward API.
type ServiceAccountRef struct {
	Namespace, Name string
}

func (r ServiceAccountRef) String() string { return r.Namespace + "/" + r.Name }

// IsSet reports whether both parts are known; outside a pod they are not.
func (r ServiceAccountRef) IsSet() bool { return r.Namespace != "" && r.Name != "" }

// UninstallRequested decides, from a pod's own ServiceAccount and namespace as read at
// SIGTERM (nil when the read failed), whether k3snet is being uninstalled: only one of them
// marked for deletion says so. `kubectl delete -k` deletes the namespace first, and the
// namespace controller may stop the pods before the ServiceAccount's own deletion lands. Any
// other SIGTERM (an upgrade, a restart, a drained node) and a failed read (API server out of
// reach) leave everything in place, as K3s leaves its rules when it stops: a node keeps
// enforcing the last policies it knew rather than opening every pod to every peer.
func UninstallRequested(sa *corev1.ServiceAccount, ns *corev1.Namespace) bool {
	return (sa != nil && sa.DeletionTimestamp != nil) || (ns != nil && ns.DeletionTimestamp != nil)
}

// BeingUninstalled reads the ServiceAccount self and its namespace and applies
// UninstallRequested, logging why it decided as it did.
func BeingUninstalled(ctx context.Context, client kubernetes.Interface, self ServiceAccountRef) bool {
	logger := klog.FromContext(ctx)
	if !self.IsSet() {
		logger.Info("Own ServiceAccount unknown (POD_NAMESPACE or SERVICE_ACCOUNT unset); not an uninstall")
		return false
	}
	sa, err := client.CoreV1().ServiceAccounts(self.Namespace).Get(ctx, self.Name, metav1.GetOptions{})
	if err != nil {
		logger.Error(err, "Reading own ServiceAccount failed", "serviceAccount", self)
		sa = nil
	}
	ns, err := client.CoreV1().Namespaces().Get(ctx, self.Namespace, metav1.GetOptions{})
	if err != nil {
		logger.Error(err, "Reading own namespace failed", "namespace", self.Namespace)
		ns = nil
	}
	uninstall := UninstallRequested(sa, ns)
	if uninstall {
		logger.Info("Own ServiceAccount or namespace is being deleted: uninstalling", "serviceAccount", self)
	} else {
		logger.Info("Not an uninstall: leaving everything in place", "serviceAccount", self)
	}
	return uninstall
}
