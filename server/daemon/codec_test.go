package daemon

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
)

// rawCodec sends and receives bytes as they are, so that a test can send a
// request no proto library would marshal.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// TestUndecodableRequest sends requests whose group_id is not valid UTF-8,
// which grpc-go's codec refuses before any interceptor runs. They must be
// answered INVALID_ARGUMENT, logged (never their bytes), counted in the
// metrics, audited if they are changes, and charged to the caller's rate
// limit like any call.
func TestUndecodableRequest(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, LogFormat: "json", RateLimit: 0.01, RateBurst: 2})
	conn := d.grpcConn(t)
	const garbage = "\xff\xfeGARBAGE-BYTES"
	body := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), garbage)
	var reply []byte
	for _, method := range []string{
		encryptionv1.EncryptionService_GetEncryptionAtRest_FullMethodName,
		encryptionv1.EncryptionService_UpdateEncryptionAtRest_FullMethodName,
	} {
		err := conn.Invoke(t.Context(), method, &body, &reply, grpc.ForceCodecV2(rawCodec{}))
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || failure.Parse(st).Info.Reason != failure.ReasonMalformedRequest {
			t.Errorf("%s with a string that is not UTF-8 = %v, want INVALID_ARGUMENT %s", method, err, failure.ReasonMalformedRequest)
		}
		if strings.Contains(st.Message(), "GARBAGE") {
			t.Errorf("%s answer %q quotes the request's bytes", method, st.Message())
		}
	}
	// The two calls took the burst: a well-formed third call is limited.
	_, err := encryptionv1.NewEncryptionServiceClient(conn).GetEncryptionAtRest(t.Context(), &encryptionv1.GetEncryptionAtRestRequest{GroupId: testGroup})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a call after two undecodable ones = %v, want RESOURCE_EXHAUSTED: they count against the rate", err)
	}

	var logged int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && logged < 2; time.Sleep(20 * time.Millisecond) {
		logged = 0
		for _, rec := range d.log.records(t) {
			if rec["msg"] == "grpc call" && rec["code"] == "InvalidArgument" && rec["peer"] != nil {
				logged++
			}
		}
	}
	if logged != 2 {
		t.Errorf("%d call records with code InvalidArgument, want 2:\n%s", logged, d.log)
	}
	if strings.Contains(d.log.String(), "GARBAGE") {
		t.Errorf("the log shows the request's bytes:\n%s", d.log)
	}
	if recs := d.log.auditRecords(t); len(recs) != 1 || recs[0]["outcome"] != "refused" {
		t.Errorf("audit records = %v, want one refused change", recs)
	}
	_, metrics := httpDo(t, &http.Client{Timeout: 10 * time.Second}, "GET", d.url("/metrics"), "")
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="GetEncryptionAtRest",grpc_service="atlas.encryption.v1.EncryptionService",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="UpdateEncryptionAtRest",grpc_service="atlas.encryption.v1.EncryptionService",grpc_type="unary"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestUnknownMethodIsSeen: a call of a method no service has is logged and
// counted, under "unknown" so that callers cannot add series.
func TestUnknownMethodIsSeen(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, LogFormat: "json"})
	body, reply := []byte{}, []byte{}
	err := d.grpcConn(t).Invoke(t.Context(), "/no.Such/Method", &body, &reply, grpc.ForceCodecV2(rawCodec{}))
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("Invoke(/no.Such/Method) = %v, want UNIMPLEMENTED", err)
	}
	// grpc-go reports the end of a call to the stats handler after it has
	// sent the status, so the count may land just after the client has
	// its answer.
	const want = `grpc_server_handled_total{grpc_code="Unimplemented",grpc_method="unknown",grpc_service="unknown",grpc_type="bidi_stream"} 1`
	var metrics string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, metrics = httpDo(t, &http.Client{Timeout: 10 * time.Second}, "GET", d.url("/metrics"), "")
		if strings.Contains(metrics, want) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	if strings.Contains(metrics, "no.Such") {
		t.Errorf("/metrics names the caller's method")
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(d.log.String(), `"method":"/no.Such/Method"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no call record for the unknown method:\n%s", d.log)
		}
	}
}

// TestTwoProvidersOverGRPC: a binary request whose config sets two
// providers, which a proto decoder would keep only the last of, is refused
// as REST refuses it, and nothing reaches Atlas.
func TestTwoProvidersOverGRPC(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, Config{Dev: true, LogFormat: "json"})
	aws, err := proto.Marshal(&encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{Enabled: proto.Bool(false)}}})
	if err != nil {
		t.Fatal(err)
	}
	azure, err := proto.Marshal(&encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AzureKeyVault{AzureKeyVault: &encryptionv1.AzureKeyVault{Enabled: proto.Bool(false)}}})
	if err != nil {
		t.Fatal(err)
	}
	body := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), testGroup)
	// config (field 2) holds both members: concatenated messages merge.
	body = protowire.AppendBytes(protowire.AppendTag(body, 2, protowire.BytesType), append(aws, azure...))
	var reply []byte
	err = d.grpcConn(t).Invoke(t.Context(), encryptionv1.EncryptionService_UpdateEncryptionAtRest_FullMethodName, &body, &reply, grpc.ForceCodecV2(rawCodec{}))
	st := status.Convert(err)
	p := failure.Parse(st)
	if st.Code() != codes.InvalidArgument || p.Info.Reason != failure.ReasonInvalidAttribute || !strings.Contains(st.Message(), "awsKms and azureKeyVault") {
		t.Errorf("Update with two providers = %v, want INVALID_ARGUMENT naming awsKms and azureKeyVault", err)
	}
	if len(p.Violations) != 1 || p.Violations[0].GetField() != "config.azure_key_vault" {
		t.Errorf("violations = %v, want one on config.azure_key_vault", p.Violations)
	}
	if recs := d.log.auditRecords(t); len(recs) != 1 || recs[0]["outcome"] != "refused" {
		t.Errorf("audit records = %v, want one refused change", recs)
	}
}
