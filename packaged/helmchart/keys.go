package helmchart

// Keys of the helm.cattle.io API shared with K3s's helm-controller, so a HelmChart moves
// between K3s and k3snet without orphans.
const (
	// AnnotationUnmanaged makes every helm controller ignore a HelmChart.
	AnnotationUnmanaged = "helmcharts.helm.cattle.io/unmanaged"
	// AnnotationManagedBy names the helm controller that claimed a HelmChart (note the
	// domain: helmcharts.cattle.io, not helmcharts.helm.cattle.io, as in K3s).
	AnnotationManagedBy = "helmcharts.cattle.io/managed-by"
	// Finalizer guards the uninstall of a managed HelmChart's release.
	Finalizer = "wrangler.cattle.io/on-helm-chart-remove"
	// LabelConfigHash on a release records the configHash it was installed from; K3s's job
	// pods carry it as an annotation too.
	LabelConfigHash = "helmcharts.helm.cattle.io/configHash"
	// LabelChart names, on a helm job, the HelmChart it runs for.
	LabelChart = "helmcharts.helm.cattle.io/chart"
	// DefaultManagedBy is K3s's helm controller name.
	DefaultManagedBy = "helm-controller"
	// ConditionFailed is the HelmChart condition K3s's Failed column reads.
	ConditionFailed = "Failed"
	// ConditionJobCreated is the HelmChart condition K3s sets once its job exists.
	ConditionJobCreated = "JobCreated"

	// FailurePolicyAbort leaves a failed release for an operator.
	FailurePolicyAbort = "abort"
	// FailurePolicyReinstall uninstalls a failed release and installs it again (the default).
	FailurePolicyReinstall = "reinstall"
	// FailurePolicyRetry upgrades a failed release.
	FailurePolicyRetry = "retry"
)
