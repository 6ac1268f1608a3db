package helmchart

import (
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func makeHelmChart(tweaks ...func(*HelmChart)) *HelmChart {
	hc := &HelmChart{ObjectMeta: metav1.ObjectMeta{Name: "traefik", Namespace: "kube-system"}}
	hc.Spec.ChartContent = "tgz"
	for _, f := range tweaks {
		f(hc)
	}
	return hc
}

func withAnnotation(k, v string) func(*HelmChart) {
	return func(hc *HelmChart) {
		if hc.Annotations == nil {
			hc.Annotations = map[string]string{}
		}
		hc.Annotations[k] = v
	}
}

func TestClaimFor(t *testing.T) {
	tests := []struct {
		name string
		hc   *HelmChart
		want Claim
	}{
		{"a chart nobody claimed is claimed", makeHelmChart(), ClaimTake},
		{"a chart claimed by this controller is managed", makeHelmChart(withAnnotation(AnnotationManagedBy, "helm-controller")), ClaimOwned},
		{"a chart claimed by another controller is ignored", makeHelmChart(withAnnotation(AnnotationManagedBy, "other")), ClaimIgnore},
		{"an unmanaged chart is ignored even when claimed", makeHelmChart(withAnnotation(AnnotationManagedBy, "helm-controller"), withAnnotation(AnnotationUnmanaged, "")), ClaimIgnore},
		{"a chart with neither chart nor chartContent is ignored", makeHelmChart(func(hc *HelmChart) { hc.Spec.ChartContent = "" }), ClaimIgnore},
		{"a repository chart is claimed", makeHelmChart(func(hc *HelmChart) { hc.Spec.ChartContent, hc.Spec.Chart = "", "stable/x" }), ClaimTake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, ClaimFor(tt.hc, "helm-controller"))
		})
	}
}
