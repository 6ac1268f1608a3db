package helm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedactCredentials(t *testing.T) {
	runStringCases(t, redactCredentials, []stringCase{
		{name: "text without a URL is kept", in: "no chart version found", want: "no chart version found"},
		{name: "a URL without credentials is kept", in: "GET https://charts.example.com/x.tgz: 404", want: "GET https://charts.example.com/x.tgz: 404"},
		{name: "a password is masked, the user kept", in: "failed to fetch http://alice:s3cr3t@repo.example/x.tgz : 401", want: "failed to fetch http://alice:xxxxx@repo.example/x.tgz : 401"},
		{name: "a userinfo without a colon is masked whole, as it is often a token", in: "https://ghp_token@github.example/x.tgz", want: "https://xxxxx@github.example/x.tgz"},
		{name: "a password with an unescaped @ is masked whole", in: "http://alice:p@ss@repo.example/", want: "http://alice:xxxxx@repo.example/"},
		{name: "every URL of a text is masked", in: `"oci://u:p@a.example/c" and http://v:q@b.example`, want: `"oci://u:xxxxx@a.example/c" and http://v:xxxxx@b.example`},
		{name: "a URL that does not parse is still masked", in: "http://alice:s3cr3t@repo.example/%zz", want: "http://alice:xxxxx@repo.example/%zz"},
		{name: "an @ in the path is not a userinfo", in: "https://repo.example/charts/@scope/x.tgz", want: "https://repo.example/charts/@scope/x.tgz"},
		{name: "a mail address is not a URL", in: "ask admin@example.com", want: "ask admin@example.com"},
	})
}

func TestRedactErrorKeepsTheChain(t *testing.T) {
	sentinel := errors.New("sentinel")
	err := redactError(fmt.Errorf("downloading http://alice:s3cr3t@repo.example/x.tgz: %w", sentinel))
	assert.Equal(t, "downloading http://alice:xxxxx@repo.example/x.tgz: sentinel", err.Error())
	assert.ErrorIs(t, err, sentinel)
	assert.NoError(t, redactError(nil))
}

// stringCase is one row of a table over a string function: the function of in is want.
type stringCase struct{ name, in, want string }

// runStringCases checks f against every row, one subtest each.
func runStringCases(t *testing.T, f func(string) string, tests []stringCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, f(tt.in))
		})
	}
}
