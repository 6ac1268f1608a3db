package nodejoin

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testHash   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testSecret = "0123456789abcdef"
)

func TestParseToken(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Token
		wantErr string
	}{
		{name: "a K3s-style token with a bootstrap token parses",
			in: "K10" + testHash + "::abcdef." + testSecret, want: Token{CAHash: testHash, ID: "abcdef", Secret: testSecret}},
		{name: "surrounding whitespace, as in the node-token file, is ignored",
			in: "  K10" + testHash + "::abcdef." + testSecret + "\n", want: Token{CAHash: testHash, ID: "abcdef", Secret: testSecret}},
		{name: "an upper-case hash is read as lower case",
			in: "K10" + strings.ToUpper(testHash) + "::abcdef." + testSecret, want: Token{CAHash: testHash, ID: "abcdef", Secret: testSecret}},
		{name: "a bare bootstrap token lacks the CA hash",
			in: "abcdef." + testSecret, wantErr: `does not start with "K10"`},
		{name: "a K3s password token without prefix is refused",
			in: "mysecretpassword", wantErr: `does not start with "K10"`},
		{name: "a prefix without separator is refused",
			in: "K10" + testHash, wantErr: `no "::"`},
		{name: "a short hash is refused",
			in: "K10abc::abcdef." + testSecret, wantErr: "3 characters, want 64"},
		{name: "a hash that is not hex is refused",
			in: "K10" + strings.Repeat("z", 64) + "::abcdef." + testSecret, wantErr: "not hexadecimal"},
		{name: "K3s's user:password credentials are not a bootstrap token",
			in: "K10" + testHash + "::node:" + testSecret, wantErr: "not a bootstrap token"},
		{name: "an upper-case bootstrap token is refused, as kube-apiserver would",
			in: "K10" + testHash + "::ABCDEF." + testSecret, wantErr: "not a bootstrap token"},
		{name: "a short secret is refused",
			in: "K10" + testHash + "::abcdef.0123", wantErr: "not a bootstrap token"},
		{name: "a long ID is refused",
			in: "K10" + testHash + "::abcdefg." + testSecret, wantErr: "not a bootstrap token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseToken(tt.in)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.ErrorIs(t, err, ErrInvalidToken)
			assert.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), testSecret, "the error repeats the secret")
			assert.NotContains(t, err.Error(), "mysecretpassword", "the error repeats the secret")
		})
	}
}

func TestTokenStringParsesBack(t *testing.T) {
	tok := Token{CAHash: testHash, ID: "abcdef", Secret: testSecret}
	assert.Equal(t, "K10"+testHash+"::abcdef."+testSecret, tok.String())
	got, err := ParseToken(tok.String())
	require.NoError(t, err)
	assert.Equal(t, tok, got)
}

func TestNewTokenHashesTheCAFile(t *testing.T) {
	ca := newTestCA(t)
	tok, err := NewToken(ca.pem)
	require.NoError(t, err)
	sum := sha256.Sum256(ca.pem)
	assert.Equal(t, hex.EncodeToString(sum[:]), tok.CAHash, "the hash is sha256sum of the CA file")
	assert.Regexp(t, regexp.MustCompile(`^[a-z0-9]{6}$`), tok.ID)
	assert.Regexp(t, regexp.MustCompile(`^[a-z0-9]{16}$`), tok.Secret)
	parsed, err := ParseToken(tok.String())
	require.NoError(t, err)
	assert.Equal(t, tok, parsed)

	other, err := NewToken(ca.pem)
	require.NoError(t, err)
	assert.NotEqual(t, tok.ID+tok.Secret, other.ID+other.Secret, "two tokens share their credentials")
}

func TestNewTokenRefusesWhatIsNotOneCA(t *testing.T) {
	ca := newTestCA(t)
	leaf := newServingCert(t, ca)
	tests := []struct {
		name    string
		caPEM   []byte
		wantErr string
	}{
		{name: "a leaf certificate is not a CA", caPEM: leaf.pem, wantErr: "not a CA"},
		{name: "a bundle has no single hash", caPEM: append(append([]byte{}, ca.pem...), leaf.pem...), wantErr: "more than one"},
		{name: "garbage is no certificate", caPEM: []byte("hello"), wantErr: "no PEM certificate"},
		{name: "a key is no certificate", caPEM: ca.keyPEM(t), wantErr: "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewToken(tt.caPEM)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// TestLoadOrCreateToken runs its steps in order on one file.
func TestLoadOrCreateToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server", "node-token")
	ca := newTestCA(t)

	first, err := LoadOrCreateToken(path, ca.pem)
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, first.String()+"\n", string(data))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	again, err := LoadOrCreateToken(path, ca.pem)
	require.NoError(t, err)
	assert.Equal(t, first, again, "a restart keeps the token")

	newCA := newTestCA(t)
	replaced, err := LoadOrCreateToken(path, newCA.pem)
	require.NoError(t, err)
	assert.NotEqual(t, first, replaced, "a new CA keeps the old token")
	want, err := caHash(newCA.pem)
	require.NoError(t, err)
	assert.Equal(t, want, replaced.CAHash)

	require.NoError(t, os.WriteFile(path, []byte("not a token"), 0o600))
	fresh, err := LoadOrCreateToken(path, newCA.pem)
	require.NoError(t, err)
	assert.NotEqual(t, replaced, fresh)
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, fresh.String()+"\n", string(data))

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "a temporary file was left behind")
}

func TestRandomTokenPartUsesTheWholeAlphabet(t *testing.T) {
	seen := map[rune]bool{}
	for range 200 {
		s, err := randomTokenPart(tokenSecretLen)
		require.NoError(t, err)
		require.Len(t, s, tokenSecretLen)
		for _, r := range s {
			seen[r] = true
		}
	}
	for _, r := range tokenAlphabet {
		assert.True(t, seen[r], "character %q never drawn in 3200 draws", r)
	}
	assert.Len(t, seen, len(tokenAlphabet))
}
