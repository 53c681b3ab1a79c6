package build

import (
	"io"
	"log"
	"net/http"

	"github.com/google/go-containerregistry/pkg/registry"
)

// NewRegistry returns an empty in-memory OCI registry (go-containerregistry's)
// that logs nothing: the one a loopback registry of the rig or a test
// serves.
func NewRegistry() http.Handler {
	return registry.New(registry.Logger(log.New(io.Discard, "", 0)))
}
