package netpol

import (
	"k8s.io/component-base/metrics"

	"github.com/k3snet/k3snet/internal/metricsreg"
)

// metricsSubsystem prefixes every metric name: netpol_*. kube-router's are kube_router_*
// (registered globally); ours are built per Controller, never globally, so two embedded instances on
// two registries do not collide.
const metricsSubsystem = "netpol"

// Values of the result label of netpol_syncs_total.
const (
	// syncApplied: the state changed (or drift repair was due) and was applied.
	syncApplied = "applied"
	// syncUnchanged: the state equalled the one applied last, so no command ran.
	syncUnchanged = "unchanged"
	// syncFailed: reading the caches or applying failed; the runner retries.
	syncFailed = "error"
)

// controllerMetrics are the controller's Prometheus metrics.
type controllerMetrics struct {
	// syncDuration is the time of a whole sync: compile and apply.
	syncDuration *metrics.Histogram
	// syncs counts syncs by result.
	syncs *metrics.CounterVec
	// lastSyncFailed is 1 while the last sync failed, for alerts and health checks.
	lastSyncFailed *metrics.Gauge
	// chains, rules and ipsets count what the last applied state holds, by IP family
	// (kube-router's controller_policy_chains and controller_policy_ipsets).
	chains, rules, ipsets *metrics.GaugeVec

	// The kube_router_* metrics repeat ours under the names, types and units (seconds, default
	// buckets, no labels) of kube-router's pkg/metrics, so dashboards and alerts written for
	// K3s's embedded kube-router keep working.
	//
	// krSyncTime is kube_router_controller_iptables_sync_time: the whole sync, as syncDuration.
	krSyncTime *metrics.Histogram
	// krChainsSyncTime is kube_router_controller_policy_chains_sync_time: computing the chains
	// and sets, which is what kube-router times in its policy chain sync.
	krChainsSyncTime *metrics.Histogram
	// krPolicyChains and krPolicyIPSets are kube_router_controller_policy_chains and
	// kube_router_controller_policy_ipsets: the policy chains and the sets policies use in the
	// last applied state, every family together (kubeRouterCounts).
	krPolicyChains, krPolicyIPSets *metrics.Gauge
}

// kubeRouterNamespace prefixes the metrics that carry kube-router's names.
const kubeRouterNamespace = "kube_router"

// newControllerMetrics builds the metrics and registers them on reg. A nil reg registers
// nothing; unregistered metrics cost nothing to update.
func newControllerMetrics(reg metrics.KubeRegistry) (*controllerMetrics, error) {
	gauge := func(name, help string) *metrics.GaugeVec {
		return metrics.NewGaugeVec(&metrics.GaugeOpts{
			Subsystem: metricsSubsystem, Name: name, Help: help, StabilityLevel: metrics.ALPHA,
		}, []string{"family"})
	}
	m := &controllerMetrics{
		syncDuration: metrics.NewHistogram(&metrics.HistogramOpts{
			Subsystem: metricsSubsystem, Name: "sync_duration_seconds",
			Help:           "Time of one NetworkPolicy sync of the node: compiling the state and applying it.",
			Buckets:        metrics.ExponentialBuckets(0.001, 2, 16),
			StabilityLevel: metrics.ALPHA,
		}),
		syncs: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem: metricsSubsystem, Name: "syncs_total",
			Help:           "NetworkPolicy syncs of the node, by result: applied, unchanged (nothing to do) or error.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"result"}),
		lastSyncFailed: metrics.NewGauge(&metrics.GaugeOpts{
			Subsystem: metricsSubsystem, Name: "last_sync_failed",
			Help:           "1 when the last NetworkPolicy sync of the node failed, else 0.",
			StabilityLevel: metrics.ALPHA,
		}),
		chains: gauge("chains", "Filter-table chains of ours in the last applied state, by IP family."),
		rules:  gauge("rules", "Rules in our chains in the last applied state, by IP family."),
		ipsets: gauge("ipsets", "ipsets of ours in the last applied state, by IP family."),
		// Help texts are kube-router's.
		krSyncTime:       krHistogram("controller_iptables_sync_time", "Time it took for controller to sync iptables"),
		krChainsSyncTime: krHistogram("controller_policy_chains_sync_time", "Time it took for controller to sync policy chains"),
		krPolicyChains:   krGauge("controller_policy_chains", "Active policy chains"),
		krPolicyIPSets:   krGauge("controller_policy_ipsets", "Active policy ipsets"),
	}
	if err := metricsreg.Register(reg, nil, m.syncDuration, m.syncs, m.lastSyncFailed, m.chains, m.rules, m.ipsets,
		m.krSyncTime, m.krChainsSyncTime, m.krPolicyChains, m.krPolicyIPSets); err != nil {
		return nil, err
	}
	return m, nil
}

// krHistogram and krGauge build a metric under kube-router's name: kube-router leaves the
// buckets at the client's defaults.
func krHistogram(name, help string) *metrics.Histogram {
	return metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: kubeRouterNamespace, Name: name, Help: help, Buckets: metrics.DefBuckets, StabilityLevel: metrics.ALPHA,
	})
}

func krGauge(name, help string) *metrics.Gauge {
	return metrics.NewGauge(&metrics.GaugeOpts{Namespace: kubeRouterNamespace, Name: name, Help: help, StabilityLevel: metrics.ALPHA})
}

// kubeRouterCounts returns what kube-router's gauges count in st: policy chains (ours are one
// per policy, direction and family; kube-router's one per policy and family) and the sets the
// policy chains match, which leaves out the sets of programmed local pods and of pod groups.
func kubeRouterCounts(st State) (policyChains, policySets int) {
	for _, rs := range st.Rulesets {
		for _, ch := range rs.Chains {
			if hasHashSuffix(ch.Name, policyChainPrefix) {
				policyChains++
			}
		}
		for _, s := range rs.Sets {
			// The programmed local pods' set and the pod groups' sets are no policy's.
			if !s.AddLast && !s.DeleteLast {
				policySets++
			}
		}
	}
	return policyChains, policySets
}

// observeState records the sizes of an applied state.
func (m *controllerMetrics) observeState(st State) {
	chains, sets := kubeRouterCounts(st)
	m.krPolicyChains.Set(float64(chains))
	m.krPolicyIPSets.Set(float64(sets))
	for _, rs := range st.Rulesets {
		rules := 0
		for _, ch := range rs.Chains {
			rules += len(ch.Rules)
		}
		fam := string(rs.Family)
		m.chains.WithLabelValues(fam).Set(float64(len(rs.Chains)))
		m.rules.WithLabelValues(fam).Set(float64(rules))
		m.ipsets.WithLabelValues(fam).Set(float64(len(rs.Sets)))
	}
}
