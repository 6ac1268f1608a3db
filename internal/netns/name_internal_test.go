package netns

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidatePrefixKeepsNamesUsableAsInterfaceNames(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		wantErr bool
	}{
		{name: "a short word is accepted", prefix: "client"},
		{name: "eight characters with a dash and an underscore are accepted", prefix: "a-b_c123"},
		{name: "an empty prefix is rejected", prefix: "", wantErr: true},
		{name: "nine characters are rejected", prefix: "ninechars", wantErr: true},
		{name: "a slash is rejected", prefix: "a/b", wantErr: true},
		{name: "a dot is rejected", prefix: "a.b", wantErr: true},
		{name: "a space is rejected", prefix: "a b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validatePrefix(tt.prefix)
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestNewNameAddsARandomSuffixWithinFifteenCharacters(t *testing.T) {
	a, err := newName("eightchr")
	require.NoError(t, err)
	b, err := newName("eightchr")
	require.NoError(t, err)
	assert.Len(t, a, maxNameLen)
	assert.True(t, strings.HasPrefix(a, "eightchr-"), a)
	assert.NotEqual(t, a, b)
}
