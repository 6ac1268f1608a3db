package testcluster

import (
	"context"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// ImpersonateRole gives user the rules of role and returns a copy of the admin Config that
// impersonates user, so a controller under test runs with its least-privilege role and a rule
// missing from it fails the test.
//
// The ClusterRole and its ClusterRoleBinding are both named after user, so the name role
// carries does not matter; an existing one is updated, and both are deleted when the test
// ends. Give each call its own user, e.g. from UniqueName: the authorizer learns of bindings
// through its informers, so an earlier test's binding to the same user, being removed, could
// still answer for a while. ImpersonateRole returns once the authorizer grants user one verb
// on one resource (or URL) of each of role's rules.
func (c *Cluster) ImpersonateRole(t testing.TB, user string, role *rbacv1.ClusterRole) *rest.Config {
	t.Helper()
	ctx := context.Background()
	rbac := c.Client.RbacV1()
	role = role.DeepCopy()
	role.ObjectMeta = metav1.ObjectMeta{Name: user, Labels: role.Labels}
	t.Cleanup(func() {
		err := rbac.ClusterRoles().Delete(context.Background(), user, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting ClusterRole %s: %v", user, err)
		}
	})
	_, err := rbac.ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = rbac.ClusterRoles().Update(ctx, role, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("creating ClusterRole %s: %v", user, err)
	}

	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	t.Cleanup(func() {
		err := rbac.ClusterRoleBindings().Delete(context.Background(), user, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting ClusterRoleBinding %s: %v", user, err)
		}
	})
	// An existing binding is already right: its roleRef and subject are both user.
	_, err = rbac.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating ClusterRoleBinding %s: %v", user, err)
	}

	reviews := AccessReviews(user, role.Rules)
	err = c.Poll(ctx, func(ctx context.Context) (bool, error) {
		for _, r := range reviews {
			got, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, r, metav1.CreateOptions{})
			if err != nil || !got.Status.Allowed {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("ClusterRole %s not in effect for user %s: %v", user, user, err)
	}

	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	return cfg
}

// AccessReviews asks, for each rule, whether user may use its first verb on its first
// resource or non-resource URL: enough to see that the authorizer has the binding and the
// role's current rules. The reviews are cluster-wide; set a namespace for a Role's rules.
func AccessReviews(user string, rules []rbacv1.PolicyRule) []*authorizationv1.SubjectAccessReview {
	var out []*authorizationv1.SubjectAccessReview
	for _, r := range rules {
		if len(r.Verbs) == 0 {
			continue
		}
		spec := authorizationv1.SubjectAccessReviewSpec{User: user}
		switch {
		case len(r.Resources) > 0:
			attrs := &authorizationv1.ResourceAttributes{Verb: r.Verbs[0]}
			if len(r.APIGroups) > 0 {
				attrs.Group = r.APIGroups[0]
			}
			// "nodes/status" is resource nodes, subresource status.
			attrs.Resource, attrs.Subresource, _ = strings.Cut(r.Resources[0], "/")
			if len(r.ResourceNames) > 0 {
				attrs.Name = r.ResourceNames[0]
			}
			spec.ResourceAttributes = attrs
		case len(r.NonResourceURLs) > 0:
			spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: r.NonResourceURLs[0], Verb: r.Verbs[0]}
		default:
			continue
		}
		out = append(out, &authorizationv1.SubjectAccessReview{Spec: spec})
	}
	return out
}
