package packaged

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// ReasonTraefikV1Installed is the Event on HelmChart kube-system/traefik when Traefik is not
// staged because a Traefik v1 installation exists (K3s does not upgrade Traefik v1 to v2).
const ReasonTraefikV1Installed = "TraefikV1Installed"

// TraefikV1Installed reports whether HelmChart kube-system/traefik installs Traefik v1: its
// chart file is named traefik-1.*. Such an installation is not upgraded to v2: the
// caller then adds "traefik" to Stage's skips (and not to the deploy controller's Disables,
// which would uninstall it). When it returns true it logs why, and sends an Event on the
// HelmChart when recorder is not nil. No HelmChart API, or no such HelmChart, means false.
func TraefikV1Installed(ctx context.Context, dyn dynamic.Interface, recorder record.EventRecorder) (bool, error) {
	gvr := schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmcharts"}
	hc, err := dyn.Resource(gvr).Namespace(addonNamespace).Get(ctx, "traefik", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking for Traefik v1: %w", err)
	}
	chart, _, _ := unstructured.NestedString(hc.Object, "spec", "chart")
	if !isTraefikV1Chart(chart) {
		return false, nil
	}
	const msg = "Traefik v1 is installed (chart %s); not staging Traefik v2 over it"
	klog.FromContext(ctx).Info("Not staging Traefik: a Traefik v1 installation exists", "helmChart", klog.KObj(hc), "chart", chart)
	if recorder != nil {
		recorder.Eventf(hc, corev1.EventTypeWarning, ReasonTraefikV1Installed, msg, chart)
	}
	return true, nil
}

// isTraefikV1Chart reports whether chart (a chart name, a URL or a path) names a traefik-1.*
// chart file.
func isTraefikV1Chart(chart string) bool {
	if u, err := url.Parse(chart); err == nil && u.Path != "" {
		chart = u.Path
	}
	return strings.HasPrefix(path.Base(chart), "traefik-1.")
}
