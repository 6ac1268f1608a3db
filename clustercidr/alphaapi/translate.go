package alphaapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/clustercidr"
)

// The served and the stored view of ClusterCIDR.
const (
	// Group and Version are the API this package serves.
	Group   = "networking.k8s.io"
	Version = "v1alpha1"

	alphaAPIVersion  = Group + "/" + Version
	storedAPIVersion = clustercidr.Group + "/" + clustercidr.Version
)

// Status messages qualify the resource with its group ("clustercidrs.networking.x-k8s.io
// \"a\" not found", "ClusterCIDR.networking.x-k8s.io \"a\" is invalid"); a v1alpha1 client sees
// its own group. The RBAC part of a Forbidden message ("in API group networking.x-k8s.io")
// stays: it names the rule the user lacks.
var statusMessage = strings.NewReplacer(
	clustercidr.Resource+"."+clustercidr.Group, clustercidr.Resource+"."+Group,
	clustercidr.Kind+"."+clustercidr.Group, clustercidr.Kind+"."+Group,
)

// requestToStored rewrites a request body of the given media type from v1alpha1 to the stored
// version and returns it as JSON: an object's apiVersion, or the value of a JSON patch
// operation on /apiVersion. YAML (kubectl apply --server-side sends apply-patch+yaml) becomes
// JSON, which every YAML media type accepts.
func requestToStored(body []byte, mediaType string) ([]byte, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return body, nil
	}
	if strings.HasSuffix(mediaType, "yaml") {
		converted, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, fmt.Errorf("decoding YAML body: %w", err)
		}
		body = converted
	}
	if mediaType == "application/json-patch+json" {
		var ops []map[string]json.RawMessage
		if err := json.Unmarshal(body, &ops); err != nil {
			return nil, fmt.Errorf("decoding JSON patch: %w", err)
		}
		for _, op := range ops {
			var path string
			if json.Unmarshal(op["path"], &path) == nil && path == "/apiVersion" {
				op["value"] = swapString(op["value"], alphaAPIVersion, storedAPIVersion)
			}
		}
		return json.Marshal(ops)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("decoding body: %w", err)
	}
	if v, ok := obj["apiVersion"]; ok {
		obj["apiVersion"] = swapString(v, alphaAPIVersion, storedAPIVersion)
	}
	return json.Marshal(obj)
}

// responseFromStored rewrites a JSON response object from the stored version to v1alpha1:
// the object, a list and its items, a watch event's object, a Table's row objects and a
// Status's message and details.
func responseFromStored(body []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, err
	}
	if err := objectFromStored(obj); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

func objectFromStored(obj map[string]json.RawMessage) error {
	apiVersion := unquote(obj["apiVersion"])
	if apiVersion == storedAPIVersion {
		obj["apiVersion"] = quote(alphaAPIVersion)
	}
	if unquote(obj["kind"]) == "Status" {
		return statusFromStored(obj)
	}
	// A watch event: {"type": ..., "object": ...}.
	if raw, ok := obj["object"]; ok && obj["type"] != nil {
		out, err := nestedFromStored(raw)
		if err != nil {
			return err
		}
		obj["object"] = out
	}
	for _, key := range []string{"items", "rows"} {
		raw, ok := obj[key]
		if !ok || string(raw) == "null" {
			continue
		}
		var elems []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		for _, elem := range elems {
			if key == "rows" {
				// A Table row's object (includeObject=Object) is the full object.
				if rowObj, ok := elem["object"]; ok && string(rowObj) != "null" {
					out, err := nestedFromStored(rowObj)
					if err != nil {
						return err
					}
					elem["object"] = out
				}
				continue
			}
			if err := objectFromStored(elem); err != nil {
				return err
			}
		}
		out, err := json.Marshal(elems)
		if err != nil {
			return err
		}
		obj[key] = out
	}
	return nil
}

func nestedFromStored(raw json.RawMessage) (json.RawMessage, error) {
	var nested map[string]json.RawMessage
	if err := json.Unmarshal(raw, &nested); err != nil {
		return nil, err
	}
	if err := objectFromStored(nested); err != nil {
		return nil, err
	}
	return json.Marshal(nested)
}

// statusFromStored names the served group in a Status.
func statusFromStored(obj map[string]json.RawMessage) error {
	if msg, ok := obj["message"]; ok {
		obj["message"] = quote(statusMessage.Replace(unquote(msg)))
	}
	raw, ok := obj["details"]
	if !ok || string(raw) == "null" {
		return nil
	}
	var details map[string]json.RawMessage
	if err := json.Unmarshal(raw, &details); err != nil {
		return err
	}
	if g, ok := details["group"]; ok {
		details["group"] = swapString(g, clustercidr.Group, Group)
	}
	if causes, ok := details["causes"]; ok && string(causes) != "null" {
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(causes, &list); err != nil {
			return err
		}
		for _, c := range list {
			if m, ok := c["message"]; ok {
				c["message"] = quote(statusMessage.Replace(unquote(m)))
			}
		}
		out, err := json.Marshal(list)
		if err != nil {
			return err
		}
		details["causes"] = out
	}
	out, err := json.Marshal(details)
	if err != nil {
		return err
	}
	obj["details"] = out
	return nil
}

// swapString returns to when raw is the JSON string from, and raw otherwise.
func swapString(raw json.RawMessage, from, to string) json.RawMessage {
	if unquote(raw) == from {
		return quote(to)
	}
	return raw
}

func unquote(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func quote(s string) json.RawMessage {
	out, _ := json.Marshal(s) // a string always encodes
	return out
}
