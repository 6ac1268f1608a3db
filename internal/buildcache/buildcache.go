// Package buildcache finds what hack/build-tools.sh and hack/build-node.sh built: both write
// into one cache outside the checkout ($K3SNET_CACHE, else $XDG_CACHE_HOME/k3snet, else
// ~/.cache/k3snet), in directories named by a key hashed from their inputs.
package buildcache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// Dir is the cache's root.
func Dir() string {
	if d := os.Getenv("K3SNET_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "k3snet")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "k3snet")
}

// FindInCheckout walks up from the working directory to the checkout that holds rel (such as
// hack/build-node.sh) and returns rel's absolute path.
func FindInCheckout(rel string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s above %s", rel, wd)
		}
	}
}

// Key is the first 16 hex digits of the sha256 of the files' contents in order, as the build
// scripts compute it (`cat FILES | sha256sum | cut -c1-16`).
func Key(files ...string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
