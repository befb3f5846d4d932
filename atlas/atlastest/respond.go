package atlastest

import (
	"encoding/json"
	"net/http"

	"github.com/encryptiond/encryptiond/atlas"
)

// writeError answers with an ApiError (always application/json, as Atlas).
func writeError(w http.ResponseWriter, r *http.Request, e *atlas.ErrorBody) {
	writeJSON(w, r, e.Error, MediaTypeJSON, e)
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
