package netns

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPrerequisiteProblemNamesExactlyWhatIsMissing(t *testing.T) {
	onPath := func(missing ...string) func(string) (string, error) {
		return func(tool string) (string, error) {
			for _, m := range missing {
				if m == tool {
					return "", errors.New("not found")
				}
			}
			return "/usr/sbin/" + tool, nil
		}
	}
	tests := []struct {
		name     string
		euid     int
		lookPath func(string) (string, error)
		want     string
	}{
		{name: "root with every tool has no problem", euid: 0, lookPath: onPath()},
		{name: "a non-root user is told so", euid: 1000, lookPath: onPath(), want: "netns prerequisites: not root (effective uid 1000)"},
		{name: "missing tools are listed in a fixed order", euid: 0, lookPath: onPath("conntrack", "ip6tables"), want: "netns prerequisites: not on PATH: ip6tables, conntrack"},
		{name: "both problems are reported together", euid: 1000, lookPath: onPath("ipset"), want: "netns prerequisites: not root (effective uid 1000); not on PATH: ipset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := prerequisiteProblem(tt.euid, tt.lookPath)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tt.want)
		})
	}
}
