package gateway_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
)

const watchPath = "/v1/groups/" + groupID + "/encryptionAtRest/AZURE/privateEndpoints/" + endpointID + ":watch"

func endpointAt(s encryptionv1.PrivateEndpoint_Status) *encryptionv1.PrivateEndpoint {
	return &encryptionv1.PrivateEndpoint{Id: endpointID, CloudProvider: encryptionv1.CloudProvider_AZURE, RegionName: "EUROPE_WEST", Status: s}
}

// openStream starts a GET of path and returns the answer and a reader of
// its lines.
func openStream(t *testing.T, srv *httptest.Server, path string) (*http.Response, *bufio.Scanner) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res, bufio.NewScanner(res.Body)
}

func nextLine(t *testing.T, sc *bufio.Scanner) map[string]any {
	t.Helper()
	if !sc.Scan() {
		t.Fatalf("the stream ended early: %v", sc.Err())
	}
	var m map[string]any
	if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
		t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
	}
	return m
}

// TestWatchStreamsOneLinePerMessage reads each message before the service
// sends the next: every message is flushed as it comes.
func TestWatchStreamsOneLinePerMessage(t *testing.T) {
	t.Parallel()
	f := newEndpointService()
	f.watch = []*encryptionv1.PrivateEndpoint{
		endpointAt(encryptionv1.PrivateEndpoint_INITIATING),
		endpointAt(encryptionv1.PrivateEndpoint_PENDING_ACCEPTANCE),
		endpointAt(encryptionv1.PrivateEndpoint_ACTIVE),
	}
	h, logs := newGateway(t, f)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	go f.step()
	res, sc := openStream(t, srv, watchPath)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET :watch = %d %s, want 200 application/json", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for i, want := range []string{"INITIATING", "PENDING_ACCEPTANCE", "ACTIVE"} {
		line := nextLine(t, sc)
		result, _ := line["result"].(map[string]any)
		if result["status"] != want || result["id"] != endpointID || result["cloudProvider"] != "AZURE" {
			t.Errorf("line %d = %v, want {\"result\": …} with status %s", i+1, line, want)
		}
		if i < 2 {
			f.step() // only now may the service send the next message
		}
	}
	if sc.Scan() {
		t.Errorf("a line after the last message: %q", sc.Text())
	}
	srv.Close() // the access log record is written once the handler returns
	if !strings.Contains(logs.String(), `"path":"`+watchPath+`"`) || !strings.Contains(logs.String(), `"status":200`) {
		t.Errorf("access log %s, want one record of the stream with status 200", logs)
	}
}

func TestWatchErrors(t *testing.T) {
	t.Parallel()
	unavailable := failure.New(codes.Unavailable, "Atlas answered 503 SERVICE_UNAVAILABLE",
		failure.Info{Domain: failure.DomainAtlas, Reason: "SERVICE_UNAVAILABLE", HTTPStatus: 503})

	t.Run("after a message: a last error line in AIP-193's shape", func(t *testing.T) {
		t.Parallel()
		f := newEndpointService()
		f.watch = []*encryptionv1.PrivateEndpoint{endpointAt(encryptionv1.PrivateEndpoint_INITIATING)}
		f.watchErr = unavailable
		h, logs := newGateway(t, f)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		go f.step()
		res, sc := openStream(t, srv, watchPath)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200: the stream had begun", res.StatusCode)
		}
		nextLine(t, sc)
		line := nextLine(t, sc)
		e, _ := line["error"].(map[string]any)
		if e["code"] != float64(503) || e["status"] != "UNAVAILABLE" || !strings.Contains(e["message"].(string), "503") || e["details"] == nil {
			t.Errorf("last line = %v, want {\"error\": {code: 503, status: UNAVAILABLE, message, details}}", line)
		}
		srv.Close()
		if !strings.Contains(logs.String(), `"error_code":"SERVICE_UNAVAILABLE"`) {
			t.Errorf("access log %s, want the error's code", logs)
		}
	})

	t.Run("before any message: the error's HTTP status and body", func(t *testing.T) {
		t.Parallel()
		f := newEndpointService()
		f.watchErr = status.Error(codes.InvalidArgument, "endpointId must be 24 lowercase hexadecimal characters")
		h, _ := newGateway(t, f)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		res, sc := openStream(t, srv, watchPath)
		line := nextLine(t, sc)
		e, _ := line["error"].(map[string]any)
		if res.StatusCode != http.StatusBadRequest || e["code"] != float64(400) || e["status"] != "INVALID_ARGUMENT" {
			t.Errorf("GET :watch = %d %v, want 400 with the AIP-193 body of the error", res.StatusCode, line)
		}
	})

	t.Run("pretty and envelope are refused", func(t *testing.T) {
		t.Parallel()
		f := newEndpointService()
		h, _ := newGateway(t, f)
		for _, q := range []string{"?pretty=true", "?envelope=true", "?pageSize=2"} {
			w := serve(t, h, http.MethodGet, watchPath+q, "")
			// The refusal itself is written as asked, in an envelope too.
			refused := w.Code == http.StatusBadRequest || strings.HasPrefix(w.Body.String(), `{"status":400,`)
			if !refused || !strings.Contains(w.Body.String(), "INVALID_QUERY_PARAMETER") {
				t.Errorf("GET :watch%s = %d %s, want 400 INVALID_QUERY_PARAMETER", q, w.Code, w.Body)
			}
		}
		if w := serve(t, h, http.MethodGet, watchPath+"?pretty=true", ""); !strings.Contains(w.Body.String(), "newline-delimited") {
			t.Errorf("GET :watch?pretty=true = %s, want it to say why", w.Body)
		}
		if len(f.seen()) != 0 {
			t.Errorf("refused watches reached the service: %v", f.seen())
		}
	})
}

// TestWatchOutlivesServerTimeouts runs a stream on an HTTP server whose
// read and write timeouts are far shorter than the stream: the gateway
// lifts them for streams. It has to let real time pass: the timeouts are
// the HTTP server's own.
func TestWatchOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	f := newEndpointService()
	f.watch = []*encryptionv1.PrivateEndpoint{endpointAt(encryptionv1.PrivateEndpoint_INITIATING), endpointAt(encryptionv1.PrivateEndpoint_ACTIVE)}
	h, _ := newGateway(t, f)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Start()
	t.Cleanup(srv.Close)

	go f.step()
	_, sc := openStream(t, srv, watchPath)
	nextLine(t, sc)
	time.Sleep(4 * timeout) // past both deadlines of the request
	f.step()
	if line := nextLine(t, sc); line["result"].(map[string]any)["status"] != "ACTIVE" {
		t.Errorf("the message after the timeouts = %v, want ACTIVE", line)
	}
}
