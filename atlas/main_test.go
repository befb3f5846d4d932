package atlas_test

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Atlas's schema marks Azure ids format "uuid", which kin-openapi only
	// checks once a validator is registered (global state, so here).
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(
		`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`))
	goleak.VerifyTestMain(m)
}
