package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/testcluster"
)

var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(cluster.Run(m)) }

// kubectlOn runs kubectl against the test cluster and returns its output.
func kubectlOn(t *testing.T, c *testcluster.Cluster, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(kubectl(t), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

// serviceAccountUser is the user name of a ServiceAccount of the installation.
func serviceAccountUser(name string) string { return "system:serviceaccount:" + namespace + ":" + name }

// grantedReviews returns, for every binding of the rendered installation, one access review
// per rule of its role and subject: what each ServiceAccount must be allowed.
func grantedReviews(r rendered) []*authorizationv1.SubjectAccessReview {
	roles := map[string][]rbacv1.PolicyRule{}
	for _, obj := range r {
		switch role := obj.(type) {
		case *rbacv1.ClusterRole:
			roles["ClusterRole/"+role.Name] = role.Rules
		case *rbacv1.Role:
			roles["Role/"+role.Name] = role.Rules
		}
	}
	var out []*authorizationv1.SubjectAccessReview
	add := func(ref rbacv1.RoleRef, ns string, subjects []rbacv1.Subject) {
		for _, s := range subjects {
			for _, review := range testcluster.AccessReviews(serviceAccountUser(s.Name), roles[ref.Kind+"/"+ref.Name]) {
				if review.Spec.ResourceAttributes != nil {
					review.Spec.ResourceAttributes.Namespace = ns
				}
				out = append(out, review)
			}
		}
	}
	for _, obj := range r {
		switch b := obj.(type) {
		case *rbacv1.ClusterRoleBinding:
			add(b.RoleRef, "", b.Subjects)
		case *rbacv1.RoleBinding:
			add(b.RoleRef, b.Namespace, b.Subjects)
		}
	}
	return out
}

// allowed asks the authorizer each review and returns the ones it denies.
func allowed(ctx context.Context, client kubernetes.Interface, reviews []*authorizationv1.SubjectAccessReview) ([]string, error) {
	var denied []string
	for _, r := range reviews {
		got, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, r, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		if !got.Status.Allowed {
			denied = append(denied, r.Spec.User+" "+r.Spec.ResourceAttributes.String())
		}
	}
	return denied, nil
}

// tokenClient returns a client that authenticates as the installation's ServiceAccount name,
// with a token from the TokenRequest API, as a pod's projected token does.
func tokenClient(t *testing.T, c *testcluster.Cluster, name string) kubernetes.Interface {
	t.Helper()
	token, err := kubectlOn(t, c, "create", "token", name, "--namespace", namespace)
	require.NoError(t, err, token)
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = strings.TrimSpace(token)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return client
}

// TestInstallAndUninstallOnAnAPIServer applies deploy/base to a real API server as a user
// would (`kubectl apply -k`), checks that each ServiceAccount holds every rule of its roles
// and not more than the node needs, then deletes it (`kubectl delete -k`): the finalizers keep
// the ServiceAccounts and their rights, so a pod still authenticates, reads its own
// ServiceAccount and sees that k3snet is being uninstalled; once the finalizers are released,
// as the controllers release them, nothing of k3snet is left.
func TestInstallAndUninstallOnAnAPIServer(t *testing.T) {
	c := cluster.Get(t)
	_, ctx := ktesting.NewTestContext(t)
	objs := decode(t, render(t, "base"))
	released := false
	t.Cleanup(func() {
		if !released {
			releaseFinalizers(t, c, objs)
		}
	})

	out, err := kubectlOn(t, c, "apply", "-k", "base")
	require.NoError(t, err, out)

	reviews := grantedReviews(objs)
	require.NotEmpty(t, reviews)
	// The authorizer learns of new bindings through its informers.
	require.NoError(t, c.Poll(ctx, func(ctx context.Context) (bool, error) {
		denied, err := allowed(ctx, c.Client, reviews)
		return len(denied) == 0, err
	}), "every ServiceAccount holds its roles")

	nodeUser := serviceAccountUser(compose.NodeServiceAccount)
	for _, attrs := range []authorizationv1.ResourceAttributes{
		{Verb: "get", Resource: "serviceaccounts", Namespace: namespace, Name: compose.ControllersServiceAccount},
		{Verb: "create", Group: "apps", Resource: "daemonsets", Namespace: "kube-system"},
		{Verb: "get", Resource: "secrets", Namespace: namespace},
		{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: namespace},
	} {
		denied, err := allowed(ctx, c.Client, []*authorizationv1.SubjectAccessReview{{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: nodeUser, ResourceAttributes: &attrs},
		}})
		require.NoError(t, err)
		assert.Len(t, denied, 1, "the node may not %s", attrs.String())
	}

	self := compose.ServiceAccountRef{Namespace: namespace, Name: compose.NodeServiceAccount}
	node := tokenClient(t, c, compose.NodeServiceAccount)
	assert.False(t, compose.BeingUninstalled(ctx, node, self), "installed: a SIGTERM is an upgrade or a restart")

	out, err = kubectlOn(t, c, "delete", "-k", "base", "--wait=false")
	require.NoError(t, err, out)
	for _, name := range []string{compose.ControllersServiceAccount, compose.NodeServiceAccount} {
		sa, err := c.Client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err, "the finalizer keeps ServiceAccount %s", name)
		assert.NotNil(t, sa.DeletionTimestamp, name)
	}
	assert.True(t, compose.BeingUninstalled(ctx, node, self), "the node pod's own token still works and says: uninstall")
	denied, err := allowed(ctx, c.Client, reviews)
	require.NoError(t, err)
	assert.Empty(t, denied, "roles and bindings being deleted still grant")

	releaseFinalizers(t, c, objs)
	released = true
	require.NoError(t, c.Poll(ctx, func(ctx context.Context) (bool, error) {
		out, err := kubectlOn(t, c, "get", "-k", "base", "--ignore-not-found", "-o", "name")
		return err == nil && strings.TrimSpace(out) == "", err
	}), "nothing of k3snet is left")
}

// releaseFinalizers removes the uninstall finalizer from every rendered object that has it,
// as the controllers do at the end of an uninstall, and deletes what is left.
func releaseFinalizers(t *testing.T, c *testcluster.Cluster, objs rendered) {
	t.Helper()
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		require.NoError(t, err)
		if len(m.GetFinalizers()) == 0 {
			continue
		}
		args := []string{"patch", obj.GetObjectKind().GroupVersionKind().Kind, m.GetName(), "--type=merge", "-p", `{"metadata":{"finalizers":null}}`}
		if ns := m.GetNamespace(); ns != "" {
			args = append(args, "--namespace", ns)
		}
		if out, err := kubectlOn(t, c, args...); err != nil && !strings.Contains(out, "NotFound") {
			t.Errorf("releasing %s: %v: %s", key(obj), err, out)
		}
	}
	err := c.Client.CoreV1().Namespaces().Delete(context.Background(), namespace, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting namespace %s: %v", namespace, err)
	}
}
