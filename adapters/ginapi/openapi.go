package ginapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed openapi.yaml
var openAPISource []byte

// OpenAPISource returns the OpenAPI 3 document of the API as written (YAML),
// with paths relative to the mount point.
func OpenAPISource() []byte { return openAPISource }

// openAPIDocument loads and validates the document and returns it as JSON,
// with the mount point as its server.
func openAPIDocument(base string) ([]byte, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPISource)
	if err != nil {
		return nil, fmt.Errorf("ginapi: openapi document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("ginapi: openapi document: %w", err)
	}
	if base == "" {
		base = "/"
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	return json.Marshal(doc)
}
