package systemimage

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestName(t *testing.T) {
	for _, tc := range []struct{ registry, want string }{
		{"", "rancher/x:v1"},
		{"registry.example.com", "registry.example.com/rancher/x:v1"},
		{"registry.example.com/", "registry.example.com/rancher/x:v1"},
		{"registry.example.com:5000/mirror", "registry.example.com:5000/mirror/rancher/x:v1"},
	} {
		assert.Equal(t, tc.want, Name(tc.registry, "rancher/x:v1"), tc.registry)
	}
}
