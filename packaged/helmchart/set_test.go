package helmchart

import (
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestEscapeCommas(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no comma is unchanged", "abc", "abc"},
		{"a comma is escaped", "a,b", `a\,b`},
		{"an escaped comma stays as it is", `a\,b`, `a\,b`},
		{"adjacent commas are each escaped", "a,,b", `a\,\,b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, escapeCommas(tt.in))
		})
	}
}

func TestSetArgFor(t *testing.T) {
	tests := []struct {
		name     string
		v        intstr.IntOrString
		wantFlag string
		wantArg  string
	}{
		{"an integer is typed", intstr.FromInt32(3), "--set", "k=3"},
		{"true is typed", intstr.FromString("true"), "--set", "k=true"},
		{"FALSE is typed, lower-cased", intstr.FromString("FALSE"), "--set", "k=false"},
		{"Null is typed, lower-cased", intstr.FromString("Null"), "--set", "k=null"},
		{"a digit string stays a string", intstr.FromString("3"), "--set-string", "k=3"},
		{"a string with commas is one value", intstr.FromString("a,b"), "--set-string", `k=a\,b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SetArgFor("k", tt.v)
			require.Equal(t, tt.wantFlag, got.Flag())
			require.Equal(t, tt.wantArg, got.KeyValue)
		})
	}
}
