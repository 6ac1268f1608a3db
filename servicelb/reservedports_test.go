package servicelb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestReservedPortErrors(t *testing.T) {
	tests := []struct {
		name       string
		svc        *corev1.Service
		reserved   []int32
		wantFields []string
	}{
		{name: "by default any port may be claimed, 10250 included, as in K3s",
			svc: makeService(withPorts(svcPort(corev1.ProtocolTCP, 10250, 30001)))},
		{name: "a port not reserved is served",
			svc: makeService(), reserved: []int32{6443, 10250}},
		{name: "each reserved port is named, whatever its protocol",
			svc: makeService(withPorts(svcPort(corev1.ProtocolTCP, 80, 30080), svcPort(corev1.ProtocolUDP, 10250, 30001),
				svcPort(corev1.ProtocolTCP, 6443, 30002))),
			reserved:   []int32{6443, 10250},
			wantFields: []string{"spec.ports[1].port", "spec.ports[2].port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fields []string
			for _, e := range reservedPortErrors(tt.svc, tt.reserved) {
				fields = append(fields, e.Field)
				assert.Contains(t, e.Error(), "is reserved on the nodes")
			}
			assert.Equal(t, tt.wantFields, fields)
		})
	}
}
