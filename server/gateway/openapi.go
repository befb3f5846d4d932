package gateway

import (
	"bytes"
	"net/http"
	"time"

	"github.com/encryptiond/encryptiond/gen/openapiv2"
)

// OpenAPIHandler serves the API's OpenAPI (Swagger 2.0) document, generated
// from the proto, as application/json. The daemon mounts it at
// /openapi.json. It answers GET and HEAD (with range and conditional
// requests handled by http.ServeContent) and 405 to anything else.
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(openapiv2.JSON))
	})
}
