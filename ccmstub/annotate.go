package ccmstub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/nodeaddr"
)

// AgentFieldManager names AnnotateNode in the managedFields of the Node it writes.
const AgentFieldManager = "k3snet-agent"

// NodeConfig is what an agent knows about its own node and publishes for the stub.
type NodeConfig struct {
	// Name is the node's name; see ResolveNodeName.
	Name string
	// Program is the name the annotation keys are built from; empty means DefaultProgram.
	Program string
	// InternalIPs are the node's IPs (--node-ip), primary family first. At least one is
	// required unless DisableCloudController is set: without it the node stays tainted.
	InternalIPs []netip.Addr
	// ExternalIPs are the node's external IPs (--node-external-ip); none removes the annotation.
	ExternalIPs []netip.Addr
	// InternalDNS and ExternalDNS are the node's DNS names (--node-internal-dns,
	// --node-external-dns); none removes the annotation.
	InternalDNS, ExternalDNS []string
	// Hostname is the OS hostname. Empty, or containing "localhost", means Name, as in K3s.
	Hostname string
	// DisableCloudController is K3s's --disable-cloud-controller: an external cloud controller
	// owns the node's addresses, so every annotation and legacy label the stub reads is removed.
	DisableCloudController bool
}

// Validate reports every invalid field at once.
func (c NodeConfig) Validate() error {
	var errs []error
	if errs1 := validation.IsDNS1123Subdomain(c.Name); len(errs1) > 0 {
		errs = append(errs, fmt.Errorf("node name %q: %s", c.Name, strings.Join(errs1, "; ")))
	}
	if err := NewKeys(c.Program).Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.InternalIPs) == 0 && !c.DisableCloudController {
		errs = append(errs, errors.New("no internal IPs: the node would keep the uninitialized taint"))
	}
	for _, list := range [][]netip.Addr{c.InternalIPs, c.ExternalIPs} {
		for _, a := range list {
			if err := nodeaddr.Check(a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, list := range [][]string{c.InternalDNS, c.ExternalDNS} {
		for _, name := range list {
			if err := checkDNSName(name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// hostname is the value of the hostname annotation: K3s uses the node name when the OS
// hostname is unusable.
func (c NodeConfig) hostname() string {
	if c.Hostname == "" || strings.Contains(c.Hostname, "localhost") {
		return c.Name
	}
	return c.Hostname
}

// AnnotateNode publishes the node's addresses for the stub, as the K3s agent does once its Node
// exists: it writes the annotations <program>.io/internal-ip, external-ip,
// internal-dns, external-dns and hostname and removes those no longer configured. K3s never
// removes external-ip when --node-external-ip is dropped (the #10037 family); this does. The
// legacy single-value labels are refreshed only on nodes that still carry them, as in K3s. With
// DisableCloudController it removes all five annotations and the legacy labels, so an external
// cloud controller owns the addresses.
//
// It reads the Node once and patches it only when something differs; a missing Node is an
// error the caller retries (apierrors.IsNotFound). The client needs get and patch on the Node,
// which a kubelet's own credential has for its node.
func AnnotateNode(ctx context.Context, client kubernetes.Interface, cfg NodeConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("ccmstub: annotating node %s: %w", cfg.Name, err)
	}
	keys := NewKeys(cfg.Program)
	node, err := client.CoreV1().Nodes().Get(ctx, cfg.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("ccmstub: reading node %s: %w", cfg.Name, err)
	}
	patch := agentPatch(node, cfg, keys)
	if patch == nil {
		return nil
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("ccmstub: encoding the patch of node %s: %w", cfg.Name, err)
	}
	if _, err := client.CoreV1().Nodes().Patch(ctx, cfg.Name, types.MergePatchType, data,
		metav1.PatchOptions{FieldManager: AgentFieldManager}); err != nil {
		return fmt.Errorf("ccmstub: annotating node %s: %w", cfg.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Annotated node", "node", cfg.Name, "patch", string(data))
	return nil
}

// agentPatch returns the JSON merge patch that brings node's agent annotations and legacy labels
// to what cfg says (null removes a key), or nil when they already match.
func agentPatch(node *corev1.Node, cfg NodeConfig, keys Keys) map[string]any {
	metadata := map[string]any{}
	if a := diffKeys(node.Annotations, agentAnnotations(cfg, keys)); a != nil {
		metadata["annotations"] = a
	}
	if l := diffKeys(node.Labels, agentLegacyLabels(node, cfg, keys)); l != nil {
		metadata["labels"] = l
	}
	if len(metadata) == 0 {
		return nil
	}
	return map[string]any{"metadata": metadata}
}

// agentAnnotations maps each of the five annotations to its wanted value, "" meaning absent.
func agentAnnotations(cfg NodeConfig, keys Keys) map[string]string {
	want := map[string]string{}
	for _, k := range keys.annotations() {
		want[k] = ""
	}
	if cfg.DisableCloudController {
		return want
	}
	want[keys.InternalIP] = joinIPs(cfg.InternalIPs)
	want[keys.ExternalIP] = joinIPs(cfg.ExternalIPs)
	want[keys.InternalDNS] = strings.Join(cfg.InternalDNS, ",")
	want[keys.ExternalDNS] = strings.Join(cfg.ExternalDNS, ",")
	want[keys.Hostname] = cfg.hostname()
	return want
}

// agentLegacyLabels maps each legacy label to its wanted value, "" meaning absent. K3s keeps
// them up to date only on nodes that already carry the internal-ip or hostname label (clusters
// from before the annotations); elsewhere they are not added. A label value cannot hold an
// IPv6 address, so the first IP that fits is used, which K3s does not check.
func agentLegacyLabels(node *corev1.Node, cfg NodeConfig, keys Keys) map[string]string {
	want := map[string]string{}
	for _, k := range keys.legacyLabels() {
		want[k] = ""
	}
	if cfg.DisableCloudController || (node.Labels[keys.InternalIP] == "" && node.Labels[keys.Hostname] == "") {
		return want
	}
	want[keys.InternalIP] = firstLabelValue(cfg.InternalIPs)
	want[keys.ExternalIP] = firstLabelValue(cfg.ExternalIPs)
	if h := cfg.hostname(); len(validation.IsValidLabelValue(h)) == 0 {
		want[keys.Hostname] = h
	}
	return want
}

// diffKeys returns the merge-patch entries that turn have into want for want's keys: a value to
// set, or nil (JSON null) to remove a key that want has empty. It returns nil when none differ.
func diffKeys(have, want map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range want {
		cur, ok := have[k]
		switch {
		case v == "" && ok:
			out[k] = nil
		case v != "" && cur != v:
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func joinIPs(ips []netip.Addr) string {
	parts := make([]string, 0, len(ips))
	for _, a := range ips {
		parts = append(parts, a.Unmap().String())
	}
	return strings.Join(parts, ",")
}

func firstLabelValue(ips []netip.Addr) string {
	for _, a := range ips {
		if s := a.Unmap().String(); len(validation.IsValidLabelValue(s)) == 0 {
			return s
		}
	}
	return ""
}
