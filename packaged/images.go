package packaged

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// RenderChart renders the inline chart of a HelmChart object with its own values and returns
// the rendered files by name (helm.RenderInline); a chart that is not inline renders nothing.
type RenderChart func(helmChart *unstructured.Unstructured) (map[string]string, error)

// Image is one container image a packaged manifest runs.
type Image struct {
	// Manifest is the packaged manifest's name as --disable takes it: "coredns", "traefik".
	Manifest string
	// Container is the name of the container that runs the image.
	Container string
	// Ref is the image reference as a cluster without a system default registry pulls it,
	// for example rancher/mirrored-coredns-coredns:1.12.3.
	Ref string
}

// Images returns the images of the packaged manifests with no system default registry: the
// containers of every pod template in the manifests, and of every inline chart a HelmChart in
// them installs, rendered by render with that HelmChart's values as the helm controller
// would. An air-gap image tarball built from this list carries exactly the images the
// manifests ask for. The result is sorted by manifest, container and reference, without
// duplicates. Rendering takes Helm, which package packaged does not link, so that a process
// that only deploys manifests (and runs HelmCharts in K3s's jobs) stays small: the air-gap
// build passes helm.RenderInline.
func Images(render RenderChart) ([]Image, error) {
	files, err := renderManifests(Vars{}, nil)
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, f := range files {
		objs, err := parseManifest(f.data)
		if err != nil {
			return nil, fmt.Errorf("parsing packaged manifest %s: %w", f.name, err)
		}
		manifest := strings.TrimSuffix(path.Base(f.name), path.Ext(f.name))
		for _, obj := range objs {
			imgs, err := objectImages(obj, render)
			if err != nil {
				return nil, fmt.Errorf("packaged manifest %s: %w", f.name, err)
			}
			for _, img := range imgs {
				img.Manifest = manifest
				out = append(out, img)
			}
		}
	}
	slices.SortFunc(out, func(a, b Image) int {
		return cmp.Or(cmp.Compare(a.Manifest, b.Manifest), cmp.Compare(a.Container, b.Container), cmp.Compare(a.Ref, b.Ref))
	})
	return slices.Compact(out), nil
}

// objectImages returns the container images obj runs: those of its pod template, or, for a
// HelmChart with inline chart content, those of the objects the chart renders.
func objectImages(obj *unstructured.Unstructured, render RenderChart) ([]Image, error) {
	if obj.GetKind() == "HelmChart" && strings.HasPrefix(obj.GetAPIVersion(), "helm.cattle.io/") {
		return helmChartImages(obj, render)
	}
	return podTemplateImages(obj), nil
}

// podSpecPath returns where a workload kind keeps its pod spec, nil for other kinds.
func podSpecPath(kind string) []string {
	switch kind {
	case "Pod":
		return []string{"spec"}
	case "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job":
		return []string{"spec", "template", "spec"}
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template", "spec"}
	}
	return nil
}

// podTemplateImages returns the images of the init and regular containers of obj's pod spec;
// objects that are not workloads have none.
func podTemplateImages(obj *unstructured.Unstructured) []Image {
	specPath := podSpecPath(obj.GetKind())
	if specPath == nil {
		return nil
	}
	var out []Image
	for _, field := range []string{"initContainers", "containers"} {
		containers, _, _ := unstructured.NestedSlice(obj.Object, append(slices.Clone(specPath), field)...)
		for _, c := range containers {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			name, _ := m["name"].(string)
			ref, _ := m["image"].(string)
			if ref != "" {
				out = append(out, Image{Container: name, Ref: ref})
			}
		}
	}
	return out
}

// helmChartImages renders the inline chart of a HelmChart with its own values (valuesContent,
// values, set; no HelmChartConfig) and returns the images of the rendered workloads. A chart
// that is not inline is fetched at install time, and its images are not packaged.
func helmChartImages(obj *unstructured.Unstructured, render RenderChart) ([]Image, error) {
	rendered, err := render(obj)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(rendered))
	for name := range rendered {
		if ext := path.Ext(name); ext == ".yaml" || ext == ".yml" || ext == ".json" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var out []Image
	for _, name := range names {
		objs, err := parseManifest([]byte(rendered[name]))
		if err != nil {
			return nil, fmt.Errorf("HelmChart %s: parsing rendered %s: %w", obj.GetName(), name, err)
		}
		for _, o := range objs {
			out = append(out, podTemplateImages(o)...)
		}
	}
	return out, nil
}
