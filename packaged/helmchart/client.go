package helmchart

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// Resource is the HelmChart API.
var Resource = schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmcharts"}

// ConfigResource is the HelmChartConfig API.
var ConfigResource = schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmchartconfigs"}

// PatchMetadata merges annotations into hc's and sets its finalizers, guarded by its
// resourceVersion so a concurrent change wins: a conflict, or a chart gone meanwhile, is no
// error, as the informer delivers the newer object (or the deletion) and requeues the chart.
func PatchMetadata(ctx context.Context, dyn dynamic.Interface, hc *HelmChart, annotations map[string]string, finalizers []string) error {
	meta := map[string]any{"resourceVersion": hc.ResourceVersion, "finalizers": finalizers}
	if annotations != nil {
		meta["annotations"] = annotations
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("encoding HelmChart %s/%s patch: %w", hc.Namespace, hc.Name, err)
	}
	_, err = dyn.Resource(Resource).Namespace(hc.Namespace).Patch(ctx, hc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patching HelmChart %s/%s metadata: %w", hc.Namespace, hc.Name, err)
	}
	return nil
}
