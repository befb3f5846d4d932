package atlastest

import (
	"encoding/json"
	"net/http"

	"github.com/encryptiond/encryptiond/atlas"
)

// apiErrorDoc is Atlas's ApiError document. Parameters is always an empty
// array: the spec types its items as objects, and the emulator has nothing
// to put there that would not echo request values.
type apiErrorDoc struct {
	BadRequestDetail *badRequestDetail `json:"badRequestDetail,omitempty"`
	Detail           string            `json:"detail"`
	Error            int               `json:"error"`
	ErrorCode        string            `json:"errorCode"`
	Parameters       []any             `json:"parameters"`
	Reason           string            `json:"reason"`
}

type badRequestDetail struct {
	Fields []atlas.FieldViolation `json:"fields"`
}

// writeAPIError answers with an ApiError (always application/json, as Atlas).
func writeAPIError(w http.ResponseWriter, r *http.Request, e apiError) {
	writeJSON(w, r, e.status, MediaTypeJSON, e.doc())
}

// doc returns e as Atlas's ApiError document.
func (e apiError) doc() apiErrorDoc {
	doc := apiErrorDoc{
		Detail:     e.detail,
		Error:      e.status,
		ErrorCode:  e.code,
		Parameters: []any{},
		Reason:     http.StatusText(e.status),
	}
	if len(e.fields) > 0 {
		doc.BadRequestDetail = &badRequestDetail{Fields: e.fields}
	}
	return doc
}

// writeJSON answers with doc, honouring the pretty and envelope query
// parameters: envelope=true answers 200 with {"status": …, "content": …}.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, doc any) {
	q := r.URL.Query()
	if q.Get("envelope") == "true" {
		doc = struct {
			Status  int `json:"status"`
			Content any `json:"content"`
		}{status, doc}
		status = http.StatusOK
	}
	var b []byte
	var err error
	if q.Get("pretty") == "true" {
		b, err = json.MarshalIndent(doc, "", "  ")
	} else {
		b, err = json.Marshal(doc)
	}
	if err != nil {
		http.Error(w, "emulator: encoding response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
