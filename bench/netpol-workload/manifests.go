package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/internal/benchworkload"
)

// podImage is the image the pods name: the API server requires one; kwok pulls nothing.
const podImage = "registry.k8s.io/pause:3.10"

// manifests are the objects of the given kinds as a create request takes them: type set,
// no status (a create drops it; kwok and the node-addresses patches fill it in).
func manifests(s benchworkload.Size, kinds []string) ([]map[string]any, error) {
	var w benchworkload.Workload
	if slices.ContainsFunc(kinds, func(k string) bool { return k != "nodes" }) {
		w = benchworkload.Generate(s)
	}
	var objs []map[string]any
	add := func(obj any) error {
		m, err := withoutStatus(obj)
		objs = append(objs, m)
		return err
	}
	var err error
	for _, kind := range kinds {
		switch kind {
		case "nodes":
			for _, n := range s.NodeObjects() {
				n.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}
				err = errors.Join(err, add(n))
			}
		case "namespaces":
			for _, ns := range w.Namespaces {
				ns.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
				err = errors.Join(err, add(ns))
			}
		case "pods":
			for _, pod := range w.Pods {
				pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
				for i := range pod.Spec.Containers {
					pod.Spec.Containers[i].Image = podImage
				}
				err = errors.Join(err, add(pod))
			}
		case "policies":
			for _, np := range w.Policies {
				np.TypeMeta = metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "NetworkPolicy"}
				err = errors.Join(err, add(np))
			}
		default:
			return nil, fmt.Errorf("unknown kind %q", kind)
		}
	}
	return objs, err
}

// withoutStatus is obj as a JSON object without its status.
func withoutStatus(obj any) (map[string]any, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	return m, nil
}

// list wraps objects in a v1 List, which kubectl apply -f takes as one document.
func list(objs []map[string]any) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
}

// writeYAML writes the objects as one YAML stream.
func writeYAML(w io.Writer, objs []map[string]any) error {
	for i, obj := range objs {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// writeNodeAddresses writes "NAME PATCH" per node: the node's InternalIP and Hostname as a
// merge patch of its status.
func writeNodeAddresses(w io.Writer, s benchworkload.Size) error {
	for _, n := range s.NodeObjects() {
		patch, err := json.Marshal(map[string]any{"status": map[string]any{"addresses": n.Status.Addresses}})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s %s\n", n.Name, patch); err != nil {
			return err
		}
	}
	return nil
}
