// Package systemimage names a system image behind K3s's --system-default-registry.
package systemimage

import "strings"

// Name is image pulled from registry, K3s's --system-default-registry, which prefixes every
// system image K3s deploys; "" leaves image as it is. A trailing slash on registry is ignored.
func Name(registry, image string) string {
	if registry = strings.TrimRight(registry, "/"); registry != "" {
		return registry + "/" + image
	}
	return image
}
