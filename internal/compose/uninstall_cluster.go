package compose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/clustercidr"
	"github.com/k3snet/k3snet/servicelb"
)

// NodePodsTimeout bounds the wait for the node pods to finish their own cleanup before their
// identity is released.
const NodePodsTimeout = 30 * time.Second

// ClusterUninstall says what UninstallCluster removes.
type ClusterUninstall struct {
	// Namespace is k3snet's namespace, where the node pods run.
	Namespace string
	// ServiceLBNamespace is where ServiceLB's DaemonSets run.
	ServiceLBNamespace string
	// Self is the ServiceAccount of the caller, released last: once it is gone the caller can
	// do nothing more. Zero for an administrator.
	Self ServiceAccountRef
	// NodePodsTimeout bounds the wait for the node pods; zero means NodePodsTimeout.
	NodePodsTimeout time.Duration
}

// UninstallCluster does what the controllers do when k3snet is uninstalled: removes ServiceLB's
// DaemonSets (releasing their Services), releases the ClusterCIDRs (if that API exists),
// waits for the node pods to have cleaned up their nodes, then releases UninstallFinalizer on
// every ServiceAccount and RBAC object of k3snet, u.Self last. It is idempotent: every replica
// may run it, and an administrator again after a failure.
func UninstallCluster(ctx context.Context, client kubernetes.Interface, meta metadata.Interface, u ClusterUninstall) error {
	logger := klog.FromContext(ctx)
	var errs []error
	if err := servicelb.Cleanup(ctx, client, u.ServiceLBNamespace); err != nil {
		errs = append(errs, err)
	}
	ccidr := schema.GroupVersionResource{Group: clustercidr.Group, Version: clustercidr.Version, Resource: clustercidr.Resource}
	if err := releaseAll(ctx, meta, ccidr, metav1.ListOptions{}, clustercidr.Finalizer, ServiceAccountRef{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if err := waitForNodePods(ctx, client, u); err != nil {
		// The node pods' identity goes anyway: keeping it would keep the namespace forever.
		logger.Error(err, "Node pods still running; releasing their identity all the same")
	}
	ours := metav1.ListOptions{LabelSelector: PartOfLabel + "=" + PartOfValue}
	for _, gvr := range protectedResources {
		if err := releaseAll(ctx, meta, gvr, ours, UninstallFinalizer, u.Self); err != nil {
			errs = append(errs, err)
		}
	}
	if u.Self.IsSet() {
		if err := release(ctx, meta, serviceAccounts, u.Self.Namespace, u.Self.Name, UninstallFinalizer); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("uninstalling k3snet: %w", err)
	}
	logger.Info("Uninstalled k3snet's cluster-wide state")
	return nil
}

var serviceAccounts = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}

// protectedResources are the kinds UninstallFinalizer protects, released in this order: the
// rights first, the identities after them.
var protectedResources = []schema.GroupVersionResource{
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	serviceAccounts,
}

// waitForNodePods waits until no node pod remains in u.Namespace: each removes its node's
// rules at SIGTERM, and needs its identity until then.
func waitForNodePods(ctx context.Context, client kubernetes.Interface, u ClusterUninstall) error {
	timeout := u.NodePodsTimeout
	if timeout == 0 {
		timeout = NodePodsTimeout
	}
	selector := NameLabel + "=" + NodeAppName
	return wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(u.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		if n := len(pods.Items); n > 0 {
			klog.FromContext(ctx).Info("Waiting for the node pods to clean up their nodes", "pods", n)
			return false, nil
		}
		return true, nil
	})
}

// releaseAll removes finalizer from every object of gvr that opts selects, except skip.
func releaseAll(ctx context.Context, meta metadata.Interface, gvr schema.GroupVersionResource, opts metav1.ListOptions, finalizer string, skip ServiceAccountRef) error {
	list, err := meta.Resource(gvr).Namespace(metav1.NamespaceAll).List(ctx, opts)
	if err != nil {
		return fmt.Errorf("listing %s: %w", gvr.Resource, err)
	}
	var errs []error
	for _, obj := range list.Items {
		if !slices.Contains(obj.Finalizers, finalizer) || (gvr == serviceAccounts && obj.Namespace == skip.Namespace && obj.Name == skip.Name) {
			continue
		}
		if err := release(ctx, meta, gvr, obj.Namespace, obj.Name, finalizer); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// release removes finalizer from one object, reading it again when someone else changed it
// in between; an object already gone is released.
func release(ctx context.Context, meta metadata.Interface, gvr schema.GroupVersionResource, namespace, name, finalizer string) error {
	client := meta.Resource(gvr).Namespace(namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		keep := slices.DeleteFunc(slices.Clone(obj.Finalizers), func(f string) bool { return f == finalizer })
		if len(keep) == len(obj.Finalizers) {
			return nil
		}
		// The resourceVersion makes the patch fail, rather than drop a finalizer someone
		// added meanwhile.
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": keep, "resourceVersion": obj.ResourceVersion}})
		if err != nil {
			return err
		}
		_, err = client.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing %s %s: %w", gvr.Resource, klog.KRef(namespace, name), err)
	}
	if err == nil {
		klog.FromContext(ctx).V(2).Info("Released", "resource", gvr.Resource, "object", klog.KRef(namespace, name), "finalizer", finalizer)
	}
	return nil
}
