package errline

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOf(t *testing.T) {
	assert.Equal(t, "a", Of(errors.New("a")))
	assert.Equal(t, "a; b; c", Of(errors.Join(errors.New("a"), errors.New("  b\n\nc  "))))
}
