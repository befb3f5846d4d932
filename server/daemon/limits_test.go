package daemon

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// TestLimits sends the daemon input over each of its limits: every one gets
// a clear error, nothing reaches Atlas, and the daemon keeps serving.
func TestLimits(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, LogFormat: "json"})
	conn := d.grpcConn(t)
	api := encryptionv1.NewEncryptionServiceClient(conn)
	v1 := d.url("/v1/groups/" + testGroup + "/encryptionAtRest")
	atlasPath := d.url("/api/atlas/v1.0/groups/" + testGroup + "/encryptionAtRest")

	// over is a JSON body just over the REST limit: a valid update whose
	// key id is padded out.
	over := `{"awsKms": {"customerMasterKeyID": "` + strings.Repeat("k", MaxBodyBytes) + `"}}`

	t.Run("REST body over 1 MiB", func(t *testing.T) {
		for _, url := range []string{v1, atlasPath} {
			code, body := httpDo(t, http.DefaultClient, "PATCH", url, over)
			if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "REQUEST_BODY_TOO_LARGE") {
				t.Errorf("PATCH %s with %d bytes = %d %.200s, want 413 REQUEST_BODY_TOO_LARGE", url, len(over), code, body)
			}
		}
	})

	t.Run("REST body at the limit is read", func(t *testing.T) {
		// Exactly MaxBodyBytes of valid JSON reaches the rules, which refuse
		// the over-long key id with 400, not 413.
		pad := MaxBodyBytes - len(`{"awsKms": {"customerMasterKeyID": ""}}`)
		body := `{"awsKms": {"customerMasterKeyID": "` + strings.Repeat("k", pad) + `"}}`
		code, answer := httpDo(t, http.DefaultClient, "PATCH", v1, body)
		if code != http.StatusBadRequest {
			t.Errorf("PATCH with exactly %d bytes = %d %.200s, want 400 from the rules", len(body), code, answer)
		}
	})

	t.Run("REST header over 64 KiB", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", v1, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Padding", strings.Repeat("h", 2*maxHeaderBytes))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET with a %d-byte header: %v", 2*maxHeaderBytes, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("GET with a %d-byte header = %d, want 431", 2*maxHeaderBytes, resp.StatusCode)
		}
	})

	t.Run("gRPC message over 1 MiB", func(t *testing.T) {
		req := &encryptionv1.UpdateEncryptionAtRestRequest{
			GroupId: testGroup,
			Config: &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{
				CustomerMasterKeyId: proto.String(strings.Repeat("k", maxRecvMsgSize)),
			}}},
		}
		_, err := api.UpdateEncryptionAtRest(t.Context(), req)
		if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "larger than max") {
			t.Errorf("UpdateEncryptionAtRest(%d-byte message) = %v, want RESOURCE_EXHAUSTED naming the limit", proto.Size(req), err)
		}
	})

	t.Run("gRPC metadata over 256 KiB", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-padding", strings.Repeat("m", 2*maxHeaderListSize))
		_, err := api.GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup})
		// The client learns the server's limit from its SETTINGS and
		// refuses to send; either way the call fails cleanly.
		if err == nil {
			t.Errorf("GetEncryptionAtRest with %d bytes of metadata = nil error, want one", 2*maxHeaderListSize)
		}
		t.Logf("GetEncryptionAtRest with %d bytes of metadata = %v", 2*maxHeaderListSize, err)
	})

	t.Run("HTTP/2 settings advertise the stream and header limits", func(t *testing.T) {
		got := http2Settings(t, d.addrs.GRPC.String())
		const maxConcurrentStreamsID, maxHeaderListSizeID = 0x3, 0x6
		if got[maxConcurrentStreamsID] != maxConcurrentStreams {
			t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want %d", got[maxConcurrentStreamsID], maxConcurrentStreams)
		}
		if got[maxHeaderListSizeID] != maxHeaderListSize {
			t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE = %d, want %d", got[maxHeaderListSizeID], maxHeaderListSize)
		}
	})

	t.Run("still serving", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Health/Check = %v, %v, want SERVING", resp, err)
		}
		if _, err := api.GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup}); err != nil {
			t.Errorf("GetEncryptionAtRest after the oversized calls = %v, want nil", err)
		}
		if n := len(d.log.auditRecords(t)); n != 1 {
			// Only the at-the-limit PATCH reached the service.
			t.Errorf("%d audit records, want 1: oversized input never reaches the service", n)
		}
	})
}

// http2Settings opens a plaintext HTTP/2 connection to addr and returns the
// server's first SETTINGS frame as id → value.
func http2Settings(t *testing.T, addr string) map[uint16]uint32 {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// The client preface, then an empty SETTINGS frame.
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatalf("writing the HTTP/2 preface: %v", err)
	}
	r := bufio.NewReader(c)
	for {
		var head [9]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			t.Fatalf("reading a frame header: %v", err)
		}
		length := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		payload := make([]byte, length)
		if _, err := io.ReadFull(r, payload); err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		const typeSettings, flagAck = 0x4, 0x1
		if head[3] != typeSettings || head[4]&flagAck != 0 {
			continue
		}
		settings := map[uint16]uint32{}
		for i := 0; i+6 <= len(payload); i += 6 {
			settings[binary.BigEndian.Uint16(payload[i:])] = binary.BigEndian.Uint32(payload[i+2:])
		}
		return settings
	}
}
