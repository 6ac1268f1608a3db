package compose

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLeaseHeld(t *testing.T) {
	now := time.Now()
	holder, empty := "pod-a_1", ""
	renewed := func(ago time.Duration) *metav1.MicroTime { m := metav1.NewMicroTime(now.Add(-ago)); return &m }
	seconds := func(s int32) *int32 { return &s }
	for _, tc := range []struct {
		name     string
		holder   *string
		renewed  *metav1.MicroTime
		duration *int32
		want     bool
	}{
		{"renewed within its term", &holder, renewed(5 * time.Second), seconds(15), true},
		{"released: no holder", &empty, renewed(time.Second), seconds(1), false},
		{"never held", nil, nil, nil, false},
		{"its holder stopped renewing a term ago", &holder, renewed(16 * time.Second), seconds(15), false},
		{"no duration: the controllers' own", &holder, renewed(10 * time.Second), nil, true},
	} {
		assert.Equal(t, tc.want, leaseHeld(tc.holder, tc.renewed, tc.duration, now), tc.name)
	}
}
