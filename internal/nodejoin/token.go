package nodejoin

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// tokenPrefix starts a K3s "secure" token: K10 followed by the CA hash. K3s also accepts
// tokens without it and then trusts whatever CA the server presents; we do not.
const tokenPrefix = "K10"

// Bootstrap tokens are <6 chars>.<16 chars> from [a-z0-9], the format kube-apiserver's
// bootstrap-token authenticator accepts (and kubeadm generates).
const (
	tokenIDLen     = 6
	tokenSecretLen = 16
	tokenAlphabet  = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// ErrInvalidToken is the error ParseToken wraps for any malformed token.
var ErrInvalidToken = errors.New("invalid node token")

// Token is a node token: the hash of the cluster CA an agent must see before it trusts the
// server, and the bootstrap token it then authenticates with.
type Token struct {
	// CAHash is the sha256 of the cluster CA certificate's PEM encoding, in lowercase hex.
	CAHash string
	// ID is the bootstrap token's public part: the user is system:bootstrap:<ID> and the
	// Secret holding it is kube-system/bootstrap-token-<ID>.
	ID string
	// Secret is the bootstrap token's secret part.
	Secret string
}

// String returns the token in the form the server writes to its node-token file and agents
// take as --token: K10<CAHash>::<ID>.<Secret>.
func (t Token) String() string {
	return tokenPrefix + t.CAHash + "::" + t.bearer()
}

// bearer is the bootstrap token as sent in an Authorization header.
func (t Token) bearer() string { return t.ID + "." + t.Secret }

// ParseToken parses a node token. Errors say what is wrong without repeating the token, which
// is a credential.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return Token{}, fmt.Errorf("%w: it does not start with %q followed by the cluster CA's hash", ErrInvalidToken, tokenPrefix)
	}
	hash, creds, ok := strings.Cut(rest, "::")
	if !ok {
		return Token{}, fmt.Errorf("%w: no \"::\" between the CA hash and the bootstrap token", ErrInvalidToken)
	}
	if err := validateCAHash(hash); err != nil {
		return Token{}, err
	}
	id, secret, ok := strings.Cut(creds, ".")
	if !ok || !validTokenPart(id, tokenIDLen) || !validTokenPart(secret, tokenSecretLen) {
		return Token{}, fmt.Errorf("%w: the part after \"::\" is not a bootstrap token of the form <%d characters>.<%d characters> from [a-z0-9]",
			ErrInvalidToken, tokenIDLen, tokenSecretLen)
	}
	return Token{CAHash: strings.ToLower(hash), ID: id, Secret: secret}, nil
}

func validateCAHash(hash string) error {
	if len(hash) != hex.EncodedLen(sha256.Size) {
		return fmt.Errorf("%w: the CA hash has %d characters, want %d (a sha256 in hex)", ErrInvalidToken, len(hash), hex.EncodedLen(sha256.Size))
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return fmt.Errorf("%w: the CA hash is not hexadecimal", ErrInvalidToken)
	}
	return nil
}

func validTokenPart(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune(tokenAlphabet, r) {
			return false
		}
	}
	return true
}

// NewToken returns a new token for the cluster CA certificate caPEM, with a random bootstrap
// token ID and secret.
func NewToken(caPEM []byte) (Token, error) {
	hash, err := caHash(caPEM)
	if err != nil {
		return Token{}, err
	}
	id, err := randomTokenPart(tokenIDLen)
	if err != nil {
		return Token{}, err
	}
	secret, err := randomTokenPart(tokenSecretLen)
	if err != nil {
		return Token{}, err
	}
	return Token{CAHash: hash, ID: id, Secret: secret}, nil
}

// randomTokenPart draws n characters uniformly from tokenAlphabet.
func randomTokenPart(n int) (string, error) {
	// 252 is the largest multiple of 36 below 256: rejecting bytes from 252 up keeps every
	// character equally likely.
	const limit = 256 - 256%len(tokenAlphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generating a bootstrap token: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, tokenAlphabet[int(b)%len(tokenAlphabet)])
			}
		}
	}
	return string(out), nil
}

// caHash returns the hash a token carries for the CA certificate in caPEM: the sha256 of its
// PEM encoding, which is `sha256sum` of a ca.crt holding just that certificate. caPEM must hold
// exactly one certificate, and it must be a CA.
func caHash(caPEM []byte) (string, error) {
	cert, err := parseSingleCert(caPEM)
	if err != nil {
		return "", fmt.Errorf("cluster CA certificate: %w", err)
	}
	if !cert.IsCA {
		return "", errors.New("cluster CA certificate: not a CA certificate")
	}
	return certHash(cert.Raw), nil
}

// certHash hashes a DER certificate as caHash does, through its canonical PEM encoding, so
// that the hash of a certificate from a TLS handshake matches the hash of the file.
func certHash(der []byte) string {
	sum := sha256.Sum256(certPEM(der))
	return hex.EncodeToString(sum[:])
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// parseSingleCert parses PEM data holding one certificate and nothing else.
func parseSingleCert(data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("more than one PEM block; want a single certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate: %w", err)
	}
	return cert, nil
}

// LoadOrCreateToken returns the token in the file at path if it parses and names the CA
// caPEM; otherwise it creates a new token and writes it there (mode 0600, atomically). A K3s
// server keeps its node token across restarts, so agents joined with it can rejoin; a new CA
// makes every old token useless, so it gets a new one.
func LoadOrCreateToken(path string, caPEM []byte) (Token, error) {
	want, err := caHash(caPEM)
	if err != nil {
		return Token{}, err
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if tok, err := ParseToken(string(data)); err == nil && tok.CAHash == want {
			return tok, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return Token{}, fmt.Errorf("reading node token %s: %w", path, err)
	}
	tok, err := NewToken(caPEM)
	if err != nil {
		return Token{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Token{}, fmt.Errorf("writing node token: %w", err)
	}
	if err := writeFileAtomic(path, []byte(tok.String()+"\n"), 0o600); err != nil {
		return Token{}, fmt.Errorf("writing node token: %w", err)
	}
	return tok, nil
}
