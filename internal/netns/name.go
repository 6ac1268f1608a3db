package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Namespace names are prefix-suffix. Keeping the whole name within Linux's
// 15-byte interface name limit (IFNAMSIZ-1) lets callers reuse a namespace's
// name for the link that leads to it.
const (
	maxNameLen   = 15
	suffixBytes  = 3 // six hex digits: 16M names per prefix, ample for one host
	maxPrefixLen = maxNameLen - 1 - 2*suffixBytes
)

// newName returns prefix plus a random suffix, so parallel test binaries that
// use the same prefix never create the same namespace.
func newName(prefix string) (string, error) {
	if err := validatePrefix(prefix); err != nil {
		return "", err
	}
	b := make([]byte, suffixBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random suffix for netns %q: %w", prefix, err)
	}
	return prefix + "-" + hex.EncodeToString(b), nil
}

// validatePrefix accepts short names made of characters that are valid both in
// a file name under /run/netns and in an interface name.
func validatePrefix(prefix string) error {
	if prefix == "" || len(prefix) > maxPrefixLen {
		return fmt.Errorf("netns prefix %q: want 1 to %d characters", prefix, maxPrefixLen)
	}
	for _, r := range prefix {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !ok {
			return fmt.Errorf("netns prefix %q: character %q is not a letter, digit, '-' or '_'", prefix, r)
		}
	}
	return nil
}
