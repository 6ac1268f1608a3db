package alphaapi

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3snet/k3snet/clustercidr"
)

// verbs are the verbs of clustercidrs this server relays; a ClusterCIDR has no status.
var verbs = metav1.Verbs{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}

// resourceList is the discovery document of networking.k8s.io/v1alpha1. kube-apiserver asks
// for it when /apis gives no aggregated discovery (legacy discovery, which is all this
// server offers).
func resourceList() *metav1.APIResourceList {
	return &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: alphaAPIVersion,
		APIResources: []metav1.APIResource{{
			Name:         clustercidr.Resource,
			SingularName: "clustercidr",
			Namespaced:   false,
			Kind:         clustercidr.Kind,
			Verbs:        verbs,
		}},
	}
}

func apiGroup() metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: alphaAPIVersion, Version: Version}
	return metav1.APIGroup{
		TypeMeta:         metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
		Name:             Group,
		Versions:         []metav1.GroupVersionForDiscovery{gv},
		PreferredVersion: gv,
	}
}

func apiGroupList() *metav1.APIGroupList {
	return &metav1.APIGroupList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups:   []metav1.APIGroup{apiGroup()},
	}
}
