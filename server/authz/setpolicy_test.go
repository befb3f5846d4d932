package authz

import (
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestSetPolicy: a policy set on a serving interceptor decides the calls
// that come after it.
func TestSetPolicy(t *testing.T) {
	t.Parallel()
	i, err := NewInterceptor(Config{Authenticate: true, Policy: mustParse(t, examplePolicy)})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, i.Intercept)
	ctx := t.Context()
	steps := []struct {
		name   string
		policy *Policy
		want   codes.Code // of the auditor's write to group1
	}{
		{"initial policy: the auditor only reads", nil, codes.PermissionDenied},
		{"the auditor may now write", mustParse(t, "callers:\n  - identity: "+auditor+"\n    write: [\""+group1+"\"]\n"), codes.OK},
		{"no policy: nobody writes", nil, codes.PermissionDenied},
	}
	for n, step := range steps {
		if n > 0 {
			if err := i.SetPolicy(step.policy); err != nil {
				t.Fatalf("%s: SetPolicy() = %v", step.name, err)
			}
		}
		if got := status.Code(ts.call(ctx, auditor, group1, Write)); got != step.want {
			t.Errorf("%s: write as the auditor = %v, want %v", step.name, got, step.want)
		}
		if err := ts.call(ctx, auditor, group1, Read); err != nil {
			t.Errorf("%s: read as the auditor = %v, want allowed", step.name, err)
		}
		if got := i.Policy(); n > 0 && got != step.policy {
			t.Errorf("%s: Policy() = %v, want the policy just set", step.name, got.Summary())
		}
	}
}

// TestSetPolicyWithoutAuthentication: a policy cannot be set where there
// are no identities, and the refusal changes nothing.
func TestSetPolicyWithoutAuthentication(t *testing.T) {
	t.Parallel()
	i, err := NewInterceptor(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := i.SetPolicy(mustParse(t, examplePolicy)); err == nil {
		t.Errorf("SetPolicy() without Authenticate = nil, want an error")
	}
	if i.Policy() != nil {
		t.Errorf("Policy() after a refused SetPolicy = %v, want nil", i.Policy().Summary())
	}
	if err := i.SetPolicy(nil); err != nil {
		t.Errorf("SetPolicy(nil) without Authenticate = %v, want nil", err)
	}
}

// TestSetPolicyWhileServing: swapping policies under concurrent calls
// (run with -race) decides each call under one policy or the other.
func TestSetPolicyWhileServing(t *testing.T) {
	t.Parallel()
	readOnly := mustParse(t, examplePolicy)
	readWrite := mustParse(t, "callers:\n  - identity: "+auditor+"\n    write: [\"*\"]\n")
	i, err := NewInterceptor(Config{Authenticate: true, Policy: readOnly})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, i.Intercept)
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := range 200 {
			p := readOnly
			if n%2 == 0 {
				p = readWrite
			}
			if err := i.SetPolicy(p); err != nil {
				t.Errorf("SetPolicy() = %v", err)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 25 {
				if err := ts.call(t.Context(), auditor, group1, Read); err != nil {
					t.Errorf("read as the auditor = %v, want allowed under both policies", err)
				}
				if c := status.Code(ts.call(t.Context(), auditor, group1, Write)); c != codes.OK && c != codes.PermissionDenied {
					t.Errorf("write as the auditor = %v, want OK or PermissionDenied", c)
				}
			}
		})
	}
	wg.Wait()
}
