package servicelb

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNewKeys(t *testing.T) {
	tests := []struct {
		name    string
		program string
		want    Keys
		pool    string
	}{
		{
			name:    "an empty program means K3s",
			program: "",
			want: Keys{
				Program:           "k3s",
				SvcName:           "svccontroller.k3s.cattle.io/svcname",
				SvcNamespace:      "svccontroller.k3s.cattle.io/svcnamespace",
				NodeSelector:      "svccontroller.k3s.cattle.io/nodeselector",
				EnableLB:          "svccontroller.k3s.cattle.io/enablelb",
				LBPool:            "svccontroller.k3s.cattle.io/lbpool",
				PriorityClassName: "svccontroller.k3s.cattle.io/priorityclassname",
				Tolerations:       "svccontroller.k3s.cattle.io/tolerations",
				IPMode:            "svccontroller.k3s.cattle.io/ipmode",
				LegacyFinalizer:   "svccontroller.k3s.cattle.io/daemonset",
			},
			pool: "lbpool.svccontroller.k3s.cattle.io/edge",
		},
		{
			name:    "RKE2 builds the same keys with its own name",
			program: "rke2",
			want: Keys{
				Program:           "rke2",
				SvcName:           "svccontroller.rke2.cattle.io/svcname",
				SvcNamespace:      "svccontroller.rke2.cattle.io/svcnamespace",
				NodeSelector:      "svccontroller.rke2.cattle.io/nodeselector",
				EnableLB:          "svccontroller.rke2.cattle.io/enablelb",
				LBPool:            "svccontroller.rke2.cattle.io/lbpool",
				PriorityClassName: "svccontroller.rke2.cattle.io/priorityclassname",
				Tolerations:       "svccontroller.rke2.cattle.io/tolerations",
				IPMode:            "svccontroller.rke2.cattle.io/ipmode",
				LegacyFinalizer:   "svccontroller.rke2.cattle.io/daemonset",
			},
			pool: "lbpool.svccontroller.rke2.cattle.io/edge",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewKeys(tt.program)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.pool, got.PoolLabel("edge"))
			assert.NoError(t, got.Validate())
		})
	}
}

func TestKeysValidate(t *testing.T) {
	tests := []struct {
		name    string
		program string
		wantErr bool
	}{
		{name: "a DNS label is a valid program", program: "my-distro", wantErr: false},
		{name: "a program with a slash makes invalid keys", program: "a/b", wantErr: true},
		{name: "a program with upper case makes invalid keys", program: "K3S", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewKeys(tt.program).Validate()
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestDaemonSetEventMessagesMatchK3s(t *testing.T) {
	assert.Equal(t, "Applied LoadBalancer DaemonSet kube-system/svclb-web-35a5ccb3",
		fmt.Sprintf(messageAppliedDaemonSet, "kube-system", "svclb-web-35a5ccb3"))
	assert.Equal(t, "Deleted LoadBalancer DaemonSet kube-system/svclb-web-35a5ccb3",
		fmt.Sprintf(messageDeletedDaemonSet, "kube-system", "svclb-web-35a5ccb3"))
}
