//go:build k3snet_node

package main

import (
	"context"
	"errors"
)

// errNodeOnly answers `controllers` in the node build (-tags k3snet_node): the binary every
// node runs leaves out the cluster-wide controllers and the Helm and kustomize libraries they
// link, which would otherwise be most of its resident memory.
var errNodeOnly = errors.New("this k3snet is the node build (-tags k3snet_node): it runs `node` and `uninstall`; `controllers` needs the full build")

func controllersCommand(context.Context, []string) error { return errNodeOnly }
