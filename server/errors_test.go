package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/encryptiond/encryptiond/atlas"
	"github.com/encryptiond/encryptiond/server/failure"
)

func TestAtlasErrorMapping(t *testing.T) {
	t.Parallel()
	expired, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	cancelled, cancelNow := context.WithCancel(t.Context())
	cancelNow()
	tests := []struct {
		name       string
		ctx        context.Context
		err        error
		wantCode   codes.Code
		wantReason string
		wantInMsg  string
		wantRetry  bool
	}{
		{"400 with fields", nil, &atlas.Error{HTTPStatus: 400, ErrorCode: "INVALID_AWS_CREDENTIALS", Detail: "bad key secret-SENTINEL", Fields: []atlas.FieldViolation{{Field: "awsKms.accessKeyID", Description: "rejected"}}}, codes.InvalidArgument, "INVALID_AWS_CREDENTIALS", "INVALID_AWS_CREDENTIALS", false},
		{"401 is about this service", nil, &atlas.Error{HTTPStatus: 401, ErrorCode: "UNAUTHORIZED"}, codes.Internal, "UNAUTHORIZED", "rejected this service's API credentials", false},
		{"403", nil, &atlas.Error{HTTPStatus: 403, ErrorCode: "IP_ADDRESS_NOT_ON_WHITELIST"}, codes.PermissionDenied, "IP_ADDRESS_NOT_ON_WHITELIST", "no access to project", false},
		{"404", nil, &atlas.Error{HTTPStatus: 404, ErrorCode: "GROUP_NOT_FOUND"}, codes.NotFound, "GROUP_NOT_FOUND", "GROUP_NOT_FOUND", false},
		{"409", nil, &atlas.Error{HTTPStatus: 409, ErrorCode: "CANNOT_DISABLE_ENCRYPTION_AT_REST"}, codes.FailedPrecondition, "CANNOT_DISABLE_ENCRYPTION_AT_REST", "409", false},
		{"429 carries RetryInfo", nil, &atlas.Error{HTTPStatus: 429, ErrorCode: "RATE_LIMITED_TOKEN_BUCKET", RetryAfter: 7 * time.Second}, codes.ResourceExhausted, "RATE_LIMITED_TOKEN_BUCKET", "429", true},
		{"503", nil, &atlas.Error{HTTPStatus: 503}, codes.Unavailable, "HTTP_503", "503", false},
		{"503 to a change: outcome unknown", nil, &atlas.Error{HTTPStatus: 503, Method: http.MethodPatch, ErrorCode: "SERVICE_UNAVAILABLE"}, codes.Unavailable, "SERVICE_UNAVAILABLE", "may or may not have been applied", false},
		{"connection refused", nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), codes.Unavailable, "ATLAS_UNREACHABLE", "cannot reach Atlas", false},
		{"outcome unknown", nil, fmt.Errorf("atlas: PATCH: %w: EOF", atlas.ErrOutcomeUnknown), codes.Unavailable, failure.ReasonOutcomeUnknown, "may or may not have been applied", false},
		{"malformed answer", nil, fmt.Errorf("atlas: GET: %w: decoding", atlas.ErrMalformedResponse), codes.Unavailable, "ATLAS_MALFORMED_RESPONSE", "cannot read", false},
		{"applied but unreadable", nil, fmt.Errorf("%w: x", atlas.ErrUpdateAppliedUnreadable), codes.Unavailable, failure.ReasonAppliedUnreadable, "applied the change", false},
		{"caller's deadline", expired, errors.New("context deadline exceeded"), codes.DeadlineExceeded, "DEADLINE_EXCEEDED", "deadline", false},
		{"deadline after sending a change", expired, fmt.Errorf("%w: timeout", atlas.ErrOutcomeUnknown), codes.DeadlineExceeded, failure.ReasonOutcomeUnknown, "may or may not", false},
		{"caller cancelled", cancelled, context.Canceled, codes.Canceled, "CANCELED", "cancelled", false},
		{"cancelled after sending a change", cancelled, fmt.Errorf("%w: context canceled", atlas.ErrOutcomeUnknown), codes.Canceled, failure.ReasonOutcomeUnknown, "may or may not", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			err := fromAtlas(ctx, tt.err, testGroup, awsKMS, []string{"secret-SENTINEL"})
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantInMsg) {
				t.Errorf("fromAtlas(%v) = %v, want code %v and a message with %q", tt.err, err, tt.wantCode, tt.wantInMsg)
			}
			if strings.Contains(st.Proto().String(), "secret-SENTINEL") {
				t.Errorf("fromAtlas(%v) = %v, which carries the secret", tt.err, st.Proto())
			}
			var info *errdetails.ErrorInfo
			var retry *errdetails.RetryInfo
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					info = d
				case *errdetails.RetryInfo:
					retry = d
				}
			}
			if info.GetReason() != tt.wantReason || info.GetMetadata()["groupId"] != testGroup {
				t.Errorf("fromAtlas(%v) ErrorInfo = %v, want reason %s for group %s", tt.err, info, tt.wantReason, testGroup)
			}
			if (retry != nil) != tt.wantRetry {
				t.Errorf("fromAtlas(%v) RetryInfo = %v, want present: %v", tt.err, retry, tt.wantRetry)
			}
		})
	}
}

func TestAppliedButUnreadableAnswerReadsTheState(t *testing.T) {
	t.Parallel()
	fake := &fakeAtlas{patchFn: func() error { return fmt.Errorf("atlas: PATCH: %w", atlas.ErrUpdateAppliedUnreadable) }}
	fake.state = enabledAWS()
	_, err := New(fake).UpdateEncryptionAtRest(t.Context(), updateRequest(t, testGroup, `{"awsKms": {"enabled": false}}`, false))
	if err != nil {
		t.Fatalf("Update with an unreadable answer = %v, want the state read afterwards", err)
	}
	if gets, patches := fake.calls(); gets != 1 || len(patches) != 1 {
		t.Errorf("Update with an unreadable answer made %d GETs and PATCHed %v, want one of each", gets, patches)
	}

	fake.getErr = &atlas.Error{HTTPStatus: http.StatusServiceUnavailable}
	_, err = New(fake).UpdateEncryptionAtRest(t.Context(), updateRequest(t, testGroup, `{"awsKms": {"enabled": false}}`, false))
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "applied the change") {
		t.Errorf("Update with an unreadable answer and a failed read = %v, want UNAVAILABLE saying the change was applied", err)
	}
}

func TestSecretsAreRedactedFromWhatAtlasSays(t *testing.T) {
	t.Parallel()
	const privateKey = "-----BEGIN PRIVATE KEY-----\nMIIEvQ-gcp-private-SENTINEL\n-----END PRIVATE KEY-----\n"
	key, _ := json.Marshal(map[string]string{"type": "service_account", "private_key": privateKey})
	body, _ := json.Marshal(map[string]any{"googleCloudKms": map[string]any{"serviceAccountKey": string(key)}})
	fake := &fakeAtlas{state: atlas.EncryptionAtRest{GoogleCloudKMS: &atlas.GoogleCloudKMS{Enabled: boolp(true)}}}
	escaped, _ := json.Marshal(privateKey)
	fake.patchFn = func() error {
		// Atlas quotes the key's private part, JSON-escaped, in its detail.
		return &atlas.Error{HTTPStatus: 400, ErrorCode: "INVALID_GOOGLE_CLOUD_CREDENTIALS", Detail: "cannot parse key " + string(escaped) + " nor " + privateKey}
	}
	_, err := New(fake).UpdateEncryptionAtRest(t.Context(), updateRequest(t, testGroup, string(body), false))
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Update = %v, want INVALID_ARGUMENT from Atlas", err)
	}
	if msg := status.Convert(err).Proto().String(); strings.Contains(msg, "SENTINEL") {
		t.Errorf("Update = %v, which carries part of the service account key", msg)
	}
}
