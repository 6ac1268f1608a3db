package alphaapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/k3snet/k3snet/clustercidr"
)

// storedPath is where the stored ClusterCIDRs are served.
const storedPath = "/apis/" + storedAPIVersion + "/" + clustercidr.Resource

var groupResource = schema.GroupResource{Group: Group, Resource: clustercidr.Resource}

// bodyTypes are the request media types relayed: JSON and YAML objects, and every patch
// type a custom resource takes. A strategic merge patch goes through too, for
// kube-apiserver to refuse with 415 as it does for any custom resource; kubectl sends JSON
// merge patches for a kind it has no schema of.
var bodyTypes = []string{
	"application/json", "application/yaml",
	"application/merge-patch+json", "application/json-patch+json",
	"application/strategic-merge-patch+json", "application/apply-patch+yaml",
}

// methods are the methods allowed on the collection and on one object.
var (
	collectionMethods = []string{http.MethodGet, http.MethodPost, http.MethodDelete}
	objectMethods     = []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete}
)

// relay makes r again against the stored ClusterCIDRs as user and answers with the response
// in v1alpha1. name is empty for the collection.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, user remoteUser, name string) {
	allowed := collectionMethods
	if name != "" {
		allowed = objectMethods
	}
	if !slices.Contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeStatus(w, apierrors.NewMethodNotSupported(groupResource, r.Method))
		return
	}
	watch := r.Method == http.MethodGet && isTrue(r.URL.Query().Get("watch"))
	timeout := requestTimeout
	if watch {
		timeout = watchTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	// Only kube-apiserver gets here, but a body that never ends must not hold a request.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(requestTimeout))
	body, contentType, status := requestBody(w, r)
	_ = rc.SetReadDeadline(time.Time{})
	if status != nil {
		writeStatus(w, status)
		return
	}
	target := *s.upstream
	target.Path = strings.TrimSuffix(target.Path, "/") + storedPath
	if name != "" {
		target.Path += "/" + name
	}
	target.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(ctx, r.Method, target.String(), bytes.NewReader(body))
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", jsonAccept(r.Header.Values("Accept")))
	user.impersonate(req)
	resp, err := s.client.Do(req)
	if err != nil {
		logger(r).Error(err, "Relaying to kube-apiserver", "method", r.Method, "name", name)
		writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("reaching kube-apiserver: %v", err)))
		return
	}
	defer resp.Body.Close()
	for _, warning := range resp.Header.Values("Warning") {
		w.Header().Add("Warning", warning)
	}
	respType := resp.Header.Get("Content-Type")
	if respType != "" {
		w.Header().Set("Content-Type", respType)
	}
	if watch && resp.StatusCode == http.StatusOK {
		streamWatch(w, r, resp.Body)
		return
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err == nil && len(data) > maxResponseBody {
		err = fmt.Errorf("response larger than %d bytes", maxResponseBody)
	}
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("reading kube-apiserver's response: %w", err)))
		return
	}
	if isJSON(respType) {
		if out, err := responseFromStored(data); err == nil {
			data = out
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(data)
}

// requestBody reads r's body, bounded, and rewrites it to the stored version.
func requestBody(w http.ResponseWriter, r *http.Request) ([]byte, string, *apierrors.StatusError) {
	if r.Body == nil {
		return nil, "", nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, "", apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxRequestBody))
	}
	if err != nil {
		return nil, "", apierrors.NewBadRequest(fmt.Sprintf("reading the body: %v", err))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, "", nil
	}
	contentType := r.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil || r.Method == http.MethodDelete {
		// DeleteOptions are no ClusterCIDR: relayed as they are.
		if r.Method == http.MethodDelete {
			return data, contentType, nil
		}
		return nil, "", unsupportedMediaType(contentType)
	}
	if !slices.Contains(bodyTypes, mediaType) {
		return nil, "", unsupportedMediaType(contentType)
	}
	out, err := requestToStored(data, mediaType)
	if err != nil {
		return nil, "", apierrors.NewBadRequest(err.Error())
	}
	if mediaType == "application/yaml" {
		// Now JSON.
		contentType = "application/json"
	}
	return out, contentType, nil
}

// streamWatch relays a watch's events one by one, each rewritten to v1alpha1, until the
// upstream watch or the client's request ends.
func streamWatch(w http.ResponseWriter, r *http.Request, upstream io.Reader) {
	w.WriteHeader(http.StatusOK)
	flush := http.NewResponseController(w).Flush
	_ = flush()
	dec := json.NewDecoder(upstream)
	for {
		var event json.RawMessage
		if err := dec.Decode(&event); err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				logger(r).V(2).Info("Watch ended", "err", err)
			}
			return
		}
		if out, err := responseFromStored(event); err == nil {
			event = out
		}
		if _, err := w.Write(append(event, '\n')); err != nil {
			return
		}
		if err := flush(); err != nil {
			return
		}
	}
}

// jsonAccept keeps the JSON media types of a client's Accept header (a Table's
// "application/json;as=Table;..." included): the body must be JSON to be rewritten, and a
// custom resource has no protobuf.
func jsonAccept(values []string) string {
	var keep []string
	for _, value := range values {
		for part := range strings.SplitSeq(value, ",") {
			part = strings.TrimSpace(part)
			if mediaType, _, err := mime.ParseMediaType(part); err == nil && mediaType == "application/json" {
				keep = append(keep, part)
			}
		}
	}
	if len(keep) == 0 {
		return "application/json"
	}
	return strings.Join(keep, ",")
}

func unsupportedMediaType(contentType string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format (%q) - accepted media types include: %s",
			contentType, strings.Join(bodyTypes, ", ")),
	}}
}

func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json"
}

func isTrue(v string) bool { return v == "true" || v == "1" }
