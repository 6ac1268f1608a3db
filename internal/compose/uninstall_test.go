package compose

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestUninstallRequested(t *testing.T) {
	deleting := metav1.Now()
	sa := func(deletion *metav1.Time) *corev1.ServiceAccount {
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ControllersServiceAccount, Namespace: DefaultNamespace,
			DeletionTimestamp: deletion, Finalizers: []string{UninstallFinalizer}}}
	}
	ns := func(deletion *metav1.Time) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultNamespace, DeletionTimestamp: deletion}}
	}
	tests := []struct {
		name string
		sa   *corev1.ServiceAccount
		ns   *corev1.Namespace
		want bool
	}{
		{name: "a ServiceAccount marked for deletion means k3snet is being uninstalled", sa: sa(&deleting), ns: ns(nil), want: true},
		{name: "so does its namespace marked for deletion, before the ServiceAccount's own deletion lands", sa: sa(nil), ns: ns(&deleting), want: true},
		{name: "a namespace being deleted is enough when the ServiceAccount could not be read", ns: ns(&deleting), want: true},
		{name: "both in place mean a restart or an upgrade: everything stays", sa: sa(nil), ns: ns(nil), want: false},
		{name: "an API server out of reach leaves everything in place", want: false},
		{name: "a ServiceAccount in place and an unreadable namespace leave everything in place", sa: sa(nil), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, UninstallRequested(tt.sa, tt.ns))
		})
	}
}
