package netpol

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPodCommentFitsTheKernelsLimit(t *testing.T) {
	longest := strings.Repeat("n", 63) + "/" + strings.Repeat("p", 253)
	for _, tc := range []struct {
		name, direction, want string
	}{
		{"default/web", "in", "default/web in"},
		{"default/web", "out", "default/web out"},
		{longest, "in", longest[:252] + " in"},
		{longest, "out", longest[:251] + " out"},
	} {
		got := podComment(tc.name, tc.direction)
		assert.Equal(t, tc.want, got)
		assert.LessOrEqual(t, len(got), maxCommentBytes)
	}
}
