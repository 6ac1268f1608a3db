package helmjob

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestUpToDate(t *testing.T) {
	owner := metav1.OwnerReference{APIVersion: "helm.cattle.io/v1", Kind: "HelmChart", Name: "web", UID: "u1"}
	meta := metav1.ObjectMeta{Name: "x", Namespace: "ns", Labels: map[string]string{"helmcharts.helm.cattle.io/chart": "web"},
		OwnerReferences: []metav1.OwnerReference{owner}}
	// live is meta as the API server returns it, with what others added.
	live := func() metav1.ObjectMeta {
		m := *meta.DeepCopy()
		m.Labels["team"] = "a"
		m.Annotations = map[string]string{"note": "x"}
		m.ResourceVersion = "7"
		return m
	}
	secret := &corev1.Secret{ObjectMeta: meta, Type: ValuesSecretType, Data: map[string][]byte{"v.yaml": []byte("a: 1\n")}}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "helm-ns-web", Labels: meta.Labels},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "helm-web", Namespace: "ns"}}}
	for _, tc := range []struct {
		name       string
		live, want any
		upToDate   bool
	}{
		{"a Secret with the same data, and more labels and annotations", &corev1.Secret{ObjectMeta: live(), Type: ValuesSecretType, Data: secret.Data}, secret, true},
		{"a Secret with other data", &corev1.Secret{ObjectMeta: live(), Type: ValuesSecretType, Data: map[string][]byte{"v.yaml": []byte("a: 2\n")}}, secret, false},
		{"a Secret with a key more", &corev1.Secret{ObjectMeta: live(), Type: ValuesSecretType, Data: map[string][]byte{"v.yaml": []byte("a: 1\n"), "b": nil}}, secret, false},
		{"a Secret of another type", &corev1.Secret{ObjectMeta: live(), Type: corev1.SecretTypeOpaque, Data: secret.Data}, secret, false},
		{"a Secret without our label", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: meta.OwnerReferences}, Type: ValuesSecretType, Data: secret.Data}, secret, false},
		{"a Secret owned by another HelmChart", func() any {
			m := live()
			m.OwnerReferences[0].UID = "u2"
			return &corev1.Secret{ObjectMeta: m, Type: ValuesSecretType, Data: secret.Data}
		}(), secret, false},
		{"an empty ConfigMap and one with no data", &corev1.ConfigMap{ObjectMeta: live()}, &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{}}, true},
		{"a ConfigMap with other content", &corev1.ConfigMap{ObjectMeta: live(), Data: map[string]string{"web.tgz.base64": "b"}},
			&corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"web.tgz.base64": "a"}}, false},
		{"a ServiceAccount", &corev1.ServiceAccount{ObjectMeta: live(), AutomountServiceAccountToken: ptr.To(true)},
			&corev1.ServiceAccount{ObjectMeta: meta, AutomountServiceAccountToken: ptr.To(true)}, true},
		{"a ServiceAccount that mounts no token", &corev1.ServiceAccount{ObjectMeta: live()},
			&corev1.ServiceAccount{ObjectMeta: meta, AutomountServiceAccountToken: ptr.To(true)}, false},
		{"a ClusterRoleBinding", crb.DeepCopy(), crb, true},
		{"a ClusterRoleBinding of another subject", func() any {
			l := crb.DeepCopy()
			l.Subjects[0].Name = "someone"
			return l
		}(), crb, false},
		{"another kind", &corev1.ConfigMap{ObjectMeta: live()}, secret, false},
	} {
		assert.Equal(t, tc.upToDate, upToDate(tc.live, tc.want), tc.name)
	}
}
