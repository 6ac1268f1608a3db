package netpol

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// errNodeNotFound: the controller's Node is not in the cache. Without it there are no pod
// CIDRs for the default deny, so nothing is programmed and the sync is retried (kube-router
// with --netpol-default-deny refuses to start in that case).
var errNodeNotFound = errors.New("node not found")

// runSync is the runner's function: one sync, timed and counted.
func (c *Controller) runSync(ctx context.Context) error {
	start := time.Now()
	result, err := c.sync(ctx)
	took := time.Since(start).Seconds()
	c.metrics.syncDuration.Observe(took)
	c.metrics.krSyncTime.Observe(took)
	c.metrics.syncs.WithLabelValues(result).Inc()
	logger := klog.FromContext(ctx)
	if err != nil {
		c.metrics.lastSyncFailed.Set(1)
		// Logged here, retried by the runner with backoff.
		logger.Error(err, "NetworkPolicy sync failed; retrying", "took", time.Since(start))
		return err
	}
	c.metrics.lastSyncFailed.Set(0)
	logger.V(2).Info("NetworkPolicy sync done", "result", result, "took", time.Since(start))
	return nil
}

// sync computes the node's state from the listers and applies it when it differs from what
// was applied last, or when drift repair is due. It returns the result label of the sync.
// Problems in NetworkPolicies do not fail it: Compile leaves their bad parts out (failing
// closed) and each policy gets a Warning Event.
func (c *Controller) sync(ctx context.Context) (string, error) {
	in, err := c.input()
	if err != nil {
		return syncFailed, err
	}
	compileStart := time.Now()
	st, compileErr := c.compiles.compile(in)
	c.metrics.krChainsSyncTime.Observe(time.Since(compileStart).Seconds())
	repairDue := c.applied != nil && time.Since(c.lastApply) >= c.opts.MaxSyncInterval
	if c.applied != nil && !repairDue && reflect.DeepEqual(*c.applied, st) {
		// Nothing the kernel holds would change: no command runs (issue 4, "Do better" 2).
		c.reportPolicyProblems(ctx, compileErr)
		return syncUnchanged, nil
	}
	if repairDue {
		// The Dataplane's caches would hide edits made inside our chains and sets.
		c.dataplane.ForgetApplied()
	}
	c.applied = nil
	if err := c.dataplane.Apply(ctx, st); err != nil {
		return syncFailed, fmt.Errorf("applying the rules of node %s: %w", c.opts.NodeName, err)
	}
	first := c.lastApply.IsZero()
	c.applied, c.lastApply = &st, time.Now()
	c.metrics.observeState(st)
	// Only now is "the rest is enforced" true (Events are emitted after the write succeeds).
	c.reportPolicyProblems(ctx, compileErr)
	if first && c.opts.AfterFirstApply != nil {
		// Last: a forced GC should not hold back this sync's metrics and Events.
		c.opts.AfterFirstApply()
	}
	return syncApplied, nil
}

// input reads Compile's input from the listers. Objects from the cache are shared, and
// Compile never modifies its input.
func (c *Controller) input() (Input, error) {
	node, err := c.nodeLister.Get(c.opts.NodeName)
	if apierrors.IsNotFound(err) {
		return Input{}, fmt.Errorf("reading node %s: %w", c.opts.NodeName, errNodeNotFound)
	}
	if err != nil {
		return Input{}, fmt.Errorf("reading node %s: %w", c.opts.NodeName, err)
	}
	cidrs, err := podCIDRs(node)
	if err != nil {
		return Input{}, err
	}
	pods, err := c.podLister.List(labels.Everything())
	if err != nil {
		return Input{}, fmt.Errorf("listing pods: %w", err)
	}
	namespaces, err := c.nsLister.List(labels.Everything())
	if err != nil {
		return Input{}, fmt.Errorf("listing namespaces: %w", err)
	}
	policies, err := c.policyLister.List(labels.Everything())
	if err != nil {
		return Input{}, fmt.Errorf("listing network policies: %w", err)
	}
	return Input{
		NodeName:      c.opts.NodeName,
		PodCIDRs:      cidrs,
		ServiceCIDRs:  c.opts.ServiceCIDRs,
		NodePortFirst: c.opts.NodePortFirst,
		NodePortLast:  c.opts.NodePortLast,
		Families:      c.opts.Families,
		Pods:          pods,
		Namespaces:    namespaces,
		Policies:      policies,
		DenyICMPEcho:  c.opts.DenyICMPEcho,
	}, nil
}

// podCIDRs returns every pod CIDR of node: all of spec.podCIDRs, so that the default deny
// covers each range multi-cluster CIDR allocates (issue 4, "Do better" 5), or the legacy
// spec.podCIDR alone.
func podCIDRs(node *corev1.Node) ([]netip.Prefix, error) {
	texts := node.Spec.PodCIDRs
	if len(texts) == 0 && node.Spec.PodCIDR != "" {
		texts = []string{node.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, text := range texts {
		p, err := netip.ParsePrefix(text)
		if err != nil {
			return nil, fmt.Errorf("parsing pod CIDR %q of node %s: %w", text, node.Name, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// reportPolicyProblems puts one Warning Event on each NetworkPolicy Compile found a problem
// in (refused as too large, or partly invalid), once per change of the policy or of its
// problems, not on every sync, and forgets policies that are fixed or gone, so a policy
// broken again is reported again.
func (c *Controller) reportPolicyProblems(ctx context.Context, err error) {
	logger := klog.FromContext(ctx)
	problems := map[cache.ObjectName][]string{}
	refused := map[cache.ObjectName]bool{}
	for _, pe := range policyErrors(err) {
		key := cache.NewObjectName(pe.Namespace, pe.Name)
		problems[key] = append(problems[key], pe.Problem)
		refused[key] = refused[key] || errors.Is(pe, ErrPolicyTooLarge)
	}
	for key := range c.reported {
		if _, ok := problems[key]; !ok {
			delete(c.reported, key)
		}
	}
	for key, list := range problems {
		np, err := c.policyLister.NetworkPolicies(key.Namespace).Get(key.Name)
		if err != nil {
			continue // deleted meanwhile; the next sync forgets it
		}
		slices.Sort(list)
		msg := strings.Join(list, "; ")
		// Generation moves with every spec change; the UID tells a re-created policy apart.
		mark := fmt.Sprintf("%s/%d/%s", np.UID, np.Generation, msg)
		if c.reported[key] == mark {
			continue
		}
		c.reported[key] = mark
		if refused[key] {
			logger.Info("NetworkPolicy refused; the pods it selects stay isolated", "networkPolicy", klog.KObj(np), "problems", msg)
			c.recorder.Eventf(np, corev1.EventTypeWarning, ReasonPolicyTooLarge, MessagePolicyTooLarge, c.opts.NodeName, msg)
			continue
		}
		logger.Info("NetworkPolicy partly invalid; enforcing the rest", "networkPolicy", klog.KObj(np), "problems", msg)
		c.recorder.Eventf(np, corev1.EventTypeWarning, ReasonInvalidPolicy, MessageInvalidPolicy, c.opts.NodeName, msg)
	}
}

// policyErrors lists the PolicyErrors in the tree of (joined) errors err.
func policyErrors(err error) []*PolicyError {
	var out []*PolicyError
	var walk func(error)
	walk = func(err error) {
		var pe *PolicyError
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			if errors.As(err, &pe) {
				out = append(out, pe)
			}
		}
	}
	walk(err)
	return out
}

// families returns the IP families a sync would program now: Options.Families, else those
// of the Node's pod CIDRs, IPv4 alone when it has none or is not cached yet (Compile's rule).
// A family the Node gains later is checked by the sync that programs it, which fails with the
// tool's error and is retried.
func (c *Controller) families() []corev1.IPFamily {
	if len(c.opts.Families) > 0 {
		return c.opts.Families
	}
	node, err := c.nodeLister.Get(c.opts.NodeName)
	if err != nil {
		return familiesOf(nil)
	}
	cidrs, _ := podCIDRs(node) // a bad CIDR fails the sync with its own error
	return familiesOf(cidrs)
}
