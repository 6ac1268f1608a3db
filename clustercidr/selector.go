package clustercidr

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// nodeSelector is a compiled spec.nodeSelector. A nil *nodeSelector selects every node.
//
// Terms are OR-ed and the requirements of one term AND-ed, as the core NodeSelector type
// defines ("The terms are ORed", "The requirements of them are ANDed"). The removed upstream
// allocator ANDed the requirements of all terms (kubernetes#116419); we do not.
type nodeSelector struct {
	terms []selectorTerm
	// text is the canonical form used as tie-breaker P3 (see compareStatic) and to compare specs.
	text string
}

// selectorTerm is one nodeSelectorTerm: its requirements must all hold.
type selectorTerm []requirement

// requirement is one matchExpressions or matchFields entry.
type requirement struct {
	field  bool   // matchFields: the key is metadata.name, not a label
	key    string // label key, or metadata.name
	op     corev1.NodeSelectorOperator
	values []string // sorted, for In and NotIn
	bound  int64    // for Gt and Lt
}

// nodeNameField is the only field matchFields may select on.
const nodeNameField = "metadata.name"

// compileNodeSelector checks ns against the ClusterCIDR API's node selector rules and compiles it. It returns nil
// for a nil selector, and the joined FieldErrors of every broken rule. ns is not modified.
func compileNodeSelector(ns *corev1.NodeSelector) (*nodeSelector, error) {
	if ns == nil {
		return nil, nil
	}
	const base = "spec.nodeSelector.nodeSelectorTerms"
	var errs []error
	if len(ns.NodeSelectorTerms) == 0 {
		errs = append(errs, &FieldError{base, "must have at least one term (omit nodeSelector to select every node)"})
	}
	sel := &nodeSelector{}
	termTexts := make([]string, 0, len(ns.NodeSelectorTerms))
	for i, t := range ns.NodeSelectorTerms {
		path := fmt.Sprintf("%s[%d]", base, i)
		if len(t.MatchExpressions)+len(t.MatchFields) == 0 {
			// The core type says "A null or empty node selector term matches no objects";
			// such a term is certainly a mistake here, so reject it rather than ignore it.
			errs = append(errs, &FieldError{path, "must have at least one matchExpressions or matchFields requirement: an empty term matches no node"})
			continue
		}
		var term selectorTerm
		for j, e := range t.MatchExpressions {
			r, err := compileRequirement(fmt.Sprintf("%s.matchExpressions[%d]", path, j), e, false)
			errs = append(errs, err...)
			term = append(term, r)
		}
		for j, e := range t.MatchFields {
			r, err := compileRequirement(fmt.Sprintf("%s.matchFields[%d]", path, j), e, true)
			errs = append(errs, err...)
			term = append(term, r)
		}
		sel.terms = append(sel.terms, term)
		termTexts = append(termTexts, term.String())
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.Sort(termTexts)
	sel.text = strings.Join(termTexts, " || ")
	return sel, nil
}

// compileRequirement checks one requirement: In/NotIn need values, Exists/DoesNotExist forbid
// them, Gt/Lt take exactly one integer, label keys are qualified names, and matchFields allow
// only metadata.name with In/NotIn and exactly one value.
func compileRequirement(path string, e corev1.NodeSelectorRequirement, field bool) (requirement, []error) {
	r := requirement{field: field, key: e.Key, op: e.Operator}
	var errs []error
	if field {
		if e.Key != nodeNameField {
			errs = append(errs, &FieldError{path + ".key", fmt.Sprintf("must be %s, not %q", nodeNameField, e.Key)})
		}
		switch e.Operator {
		case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		default:
			errs = append(errs, &FieldError{path + ".operator", fmt.Sprintf("unsupported operator %q for matchFields: want In or NotIn", e.Operator)})
		}
		if len(e.Values) != 1 {
			errs = append(errs, &FieldError{path + ".values", "must have exactly one value"})
		}
		r.values = slices.Sorted(slices.Values(e.Values))
		return r, errs
	}
	for _, msg := range validation.IsQualifiedName(e.Key) {
		errs = append(errs, &FieldError{path + ".key", fmt.Sprintf("%q: %s", e.Key, msg)})
	}
	switch e.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(e.Values) == 0 {
			errs = append(errs, &FieldError{path + ".values", fmt.Sprintf("must have at least one value for %s", e.Operator)})
		}
		r.values = slices.Sorted(slices.Values(e.Values))
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(e.Values) != 0 {
			errs = append(errs, &FieldError{path + ".values", fmt.Sprintf("must be empty for %s", e.Operator)})
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(e.Values) != 1 {
			errs = append(errs, &FieldError{path + ".values", fmt.Sprintf("must have exactly one value for %s", e.Operator)})
			break
		}
		n, err := strconv.ParseInt(e.Values[0], 10, 64)
		if err != nil {
			errs = append(errs, &FieldError{path + ".values", fmt.Sprintf("%q must be an integer for %s", e.Values[0], e.Operator)})
		}
		r.bound = n
	default:
		errs = append(errs, &FieldError{path + ".operator", fmt.Sprintf("unsupported operator %q: want In, NotIn, Exists, DoesNotExist, Gt or Lt", e.Operator)})
	}
	return r, errs
}

// match reports whether the selector selects n and, if so, the number of requirements of the
// longest matching term: with OR-ed terms, that term is the most specific reason the node was
// selected, and it is the count upstream used for a single term (priority P0, see rankFor).
// A nil selector selects every node with 0 requirements, so it ranks after every selector.
func (s *nodeSelector) match(n Node) (int, bool) {
	if s == nil {
		return 0, true
	}
	best := -1
	for _, t := range s.terms {
		if len(t) > best && t.matches(n) {
			best = len(t)
		}
	}
	return best, best >= 0
}

// String returns the canonical text of the selector; "" for nil.
func (s *nodeSelector) String() string {
	if s == nil {
		return ""
	}
	return s.text
}

func (t selectorTerm) matches(n Node) bool {
	for _, r := range t {
		if !r.matches(n) {
			return false
		}
	}
	return true
}

// matches applies the operator semantics of the core NodeSelectorRequirement: NotIn and
// DoesNotExist hold when the label is absent; Gt and Lt need a label that parses as an integer.
func (r requirement) matches(n Node) bool {
	v, ok := n.Name, true
	if !r.field {
		v, ok = n.Labels[r.key]
	}
	switch r.op {
	case corev1.NodeSelectorOpIn:
		return ok && r.has(v)
	case corev1.NodeSelectorOpNotIn:
		return !ok || !r.has(v)
	case corev1.NodeSelectorOpExists:
		return ok
	case corev1.NodeSelectorOpDoesNotExist:
		return !ok
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !ok {
			return false
		}
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		if r.op == corev1.NodeSelectorOpGt {
			return x > r.bound
		}
		return x < r.bound
	}
	return false
}

func (r requirement) has(v string) bool {
	_, found := slices.BinarySearch(r.values, v)
	return found
}

// String renders a requirement canonically: sorted values, matchFields prefixed "field:".
func (r requirement) String() string {
	key := r.key
	if r.field {
		key = "field:" + key
	}
	switch r.op {
	case corev1.NodeSelectorOpIn:
		return key + " in (" + strings.Join(r.values, ",") + ")"
	case corev1.NodeSelectorOpNotIn:
		return key + " notin (" + strings.Join(r.values, ",") + ")"
	case corev1.NodeSelectorOpExists:
		return key
	case corev1.NodeSelectorOpDoesNotExist:
		return "!" + key
	case corev1.NodeSelectorOpGt:
		return key + " > " + strconv.FormatInt(r.bound, 10)
	case corev1.NodeSelectorOpLt:
		return key + " < " + strconv.FormatInt(r.bound, 10)
	}
	return key + " " + string(r.op)
}

// String renders a term as its sorted requirements joined by commas (they are AND-ed).
func (t selectorTerm) String() string {
	parts := make([]string, len(t))
	for i, r := range t {
		parts[i] = r.String()
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
