package servicelb

import (
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// annotationTolerations parses the Service's tolerations annotation, a JSON list of core/v1
// Tolerations or else a YAML one, and checks each entry the way the API server would check it
// in a pod, so a bad entry becomes a Warning on the Service rather than a DaemonSet the API
// rejects. An empty operator becomes Equal, its meaning, so the rendered object
// is the same whichever way the user wrote it.
func annotationTolerations(svc *corev1.Service, keys Keys) ([]corev1.Toleration, field.ErrorList) {
	value := strings.TrimSpace(svc.Annotations[keys.Tolerations])
	if value == "" {
		return nil, nil
	}
	path := field.NewPath("metadata", "annotations").Key(keys.Tolerations)

	var tols []corev1.Toleration
	if jsonErr := json.Unmarshal([]byte(value), &tols); jsonErr != nil {
		tols = nil
		if yamlErr := yaml.Unmarshal([]byte(value), &tols); yamlErr != nil {
			// Report the error of the syntax the user was most likely writing.
			detail := "must be a JSON or YAML list of tolerations: " + yamlErr.Error()
			if strings.HasPrefix(value, "[") {
				detail = "must be a JSON or YAML list of tolerations: " + jsonErr.Error()
			}
			return nil, field.ErrorList{field.Invalid(path, value, detail)}
		}
	}

	var errs field.ErrorList
	for i := range tols {
		errs = append(errs, validateToleration(&tols[i], path.Index(i))...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return tols, nil
}

// validateToleration applies the pod API's toleration rules to t, and sets an empty operator to
// Equal. Lt and Gt are refused: they need an alpha feature gate the cluster may not have.
func validateToleration(t *corev1.Toleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.Operator == "" {
		t.Operator = corev1.TolerationOpEqual
	}
	switch t.Operator {
	case corev1.TolerationOpEqual:
		// "If the key is empty, operator must be Exists" (Toleration API).
		if t.Key == "" {
			errs = append(errs, field.Invalid(path.Child("operator"), t.Operator,
				"must be Exists when key is empty"))
		}
		for _, msg := range validation.IsValidLabelValue(t.Value) {
			errs = append(errs, field.Invalid(path.Child("value"), t.Value, msg))
		}
	case corev1.TolerationOpExists:
		// "If the operator is Exists, the value should be empty" (Toleration API).
		if t.Value != "" {
			errs = append(errs, field.Invalid(path.Child("value"), t.Value,
				"must be empty when operator is Exists"))
		}
	default:
		errs = append(errs, field.NotSupported(path.Child("operator"), t.Operator,
			[]corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
	}
	if t.Key != "" {
		for _, msg := range validation.IsQualifiedName(t.Key) {
			errs = append(errs, field.Invalid(path.Child("key"), t.Key, msg))
		}
	}
	switch t.Effect {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		errs = append(errs, field.NotSupported(path.Child("effect"), t.Effect,
			[]corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}))
	}
	// "TolerationSeconds represents the period of time the toleration (which must be of effect
	// NoExecute, otherwise this field is ignored) tolerates the taint"; the API rejects it
	// with any other effect.
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		errs = append(errs, field.Invalid(path.Child("tolerationSeconds"), *t.TolerationSeconds,
			"may only be set when effect is NoExecute"))
	}
	return errs
}
