package benchworkload

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestScaleMax(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
	}{{"", 3}, {"10", 10}, {"0", 3}, {"-1", 3}, {"ten", 3}} {
		t.Setenv("K3SNET_SCALE_MAX", tc.env)
		assert.Equal(t, tc.want, ScaleMax(3), "K3SNET_SCALE_MAX=%q", tc.env)
	}
}
