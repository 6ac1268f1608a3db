package ccmstub

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// NodeNameEnv is the environment variable that names the node when --node-name is not given.
const NodeNameEnv = "K3S_NODE_NAME"

// ErrInvalidNodeName is wrapped by ResolveNodeName's errors about the name it found (empty,
// localhost, or not a DNS-1123 subdomain); an unreadable hostname is reported with its own error.
var ErrInvalidNodeName = errors.New("invalid node name")

// ResolveNodeName picks the node's name in K3s's order: flagValue (--node-name), else
// $K3S_NODE_NAME, else the OS hostname, lower-cased and trimmed. Some clouds create hosts named
// localhost or with no name at all; such a name, or one
// that is not a valid DNS-1123 subdomain, is refused with an error that says where it came from
// and to pass --node-name or set K3S_NODE_NAME. getenv and hostname default to os.Getenv and
// os.Hostname when nil; tests pass their own.
func ResolveNodeName(flagValue string, getenv func(string) string, hostname func() (string, error)) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if hostname == nil {
		hostname = os.Hostname
	}
	name, source := flagValue, "--node-name"
	if name == "" {
		name, source = getenv(NodeNameEnv), NodeNameEnv
	}
	if name == "" {
		h, err := hostname()
		if err != nil {
			return "", fmt.Errorf("reading the hostname: %w; pass --node-name or set %s", err, NodeNameEnv)
		}
		name, source = h, "the hostname"
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || name == "localhost" {
		return "", fmt.Errorf("%w: %s %q cannot name a node; pass --node-name or set %s", ErrInvalidNodeName, source, name, NodeNameEnv)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "", fmt.Errorf("%w: %s %q is not a valid node name (%s); pass --node-name or set %s",
			ErrInvalidNodeName, source, name, strings.Join(errs, "; "), NodeNameEnv)
	}
	return name, nil
}
