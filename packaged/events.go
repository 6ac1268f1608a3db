package packaged

// Event reasons and messages on Addons, as K3s's deploy controller emits them:
// "<Verb> manifest at "<path>"[ failed: <err>]".
const (
	// ReasonApplyingManifest is emitted before a changed file is applied.
	ReasonApplyingManifest = "ApplyingManifest"
	// ReasonAppliedManifest is emitted after every object of a file was applied.
	ReasonAppliedManifest = "AppliedManifest"
	// ReasonDeletingManifest is emitted when a disabled file's objects are deleted.
	ReasonDeletingManifest = "DeletingManifest"
	// ReasonReadManifestFailed is emitted when a file cannot be read.
	ReasonReadManifestFailed = "ReadManifestFailed"
	// ReasonParseManifestFailed is emitted when a file is not a stream of objects.
	ReasonParseManifestFailed = "ParseManifestFailed"
	// ReasonApplyManifestFailed is emitted when an object is of an unknown kind or rejected.
	ReasonApplyManifestFailed = "ApplyManifestFailed"
	// ReasonAddonNameConflict is emitted when a file maps to the Addon name another file
	// already uses; the file is neither applied nor disabled until one is renamed.
	ReasonAddonNameConflict = "AddonNameConflict"

	messageApplying = "Applying manifest at %q"
	messageApplied  = "Applied manifest at %q"
	messageDeleting = "Deleting manifest at %q"
	messageFailed   = "%s manifest at %q failed: %v"

	// eventComponent is the Events' source, as K3s's.
	eventComponent = "deploy"
)
