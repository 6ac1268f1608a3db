package packaged

import (
	"crypto/sha1" //nolint:gosec // K3s's label value format, not a security use
	"encoding/hex"
)

// Names shared with K3s so that a cluster moves between K3s and k3snet without orphans
// (objects and Addons K3s created are adopted, and the other way round).
const (
	// fieldManager owns every field the deploy controller applies.
	fieldManager = "k3snet-deploy"
	// addonNamespace holds every Addon.
	addonNamespace = "kube-system"
	// addonAPIVersion and addonKind name the Addon API.
	addonAPIVersion = "k3s.cattle.io/v1"
	addonKind       = "Addon"
	// addonGVKString is the owner GVK as K3s's apply engine writes it (GroupVersionKind.String).
	addonGVKString = "k3s.cattle.io/v1, Kind=Addon"
	// annotationGVKs lists the kinds last applied from the Addon's file, so kinds
	// that leave the file are still pruned.
	annotationGVKs = "addon.k3s.cattle.io/gvks"

	// The owner identity K3s's apply engine writes on every object it applies for an Addon
	// (wrangler's apply, objectset.rio.cattle.io). k3snet writes the same keys, so objects K3s created are found and adopted
	// by k3snet, and the other way round.
	labelHash                = "objectset.rio.cattle.io/hash"
	labelPrune               = "objectset.rio.cattle.io/prune"
	annotationSetID          = "objectset.rio.cattle.io/id"
	annotationOwnerGVK       = "objectset.rio.cattle.io/owner-gvk"
	annotationOwnerName      = "objectset.rio.cattle.io/owner-name"
	annotationOwnerNamespace = "objectset.rio.cattle.io/owner-namespace"
)

// ownerHash is the value of labelHash for the objects of the Addon name: hex SHA-1 over set
// ID (empty for the deploy controller), owner GVK, owner name and owner namespace.
func ownerHash(name string) string {
	h := sha1.New() //nolint:gosec // see import
	for _, s := range []string{"", addonGVKString, name, addonNamespace} {
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}
