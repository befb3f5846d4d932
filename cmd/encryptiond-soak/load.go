package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/cmd/internal/procs"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
)

// callTimeout is every call's deadline: far beyond the daemon's own Atlas
// retry budget (10 s), so a deadline error is never expected.
const callTimeout = 30 * time.Second

// Operations of the load.
type op int

const (
	opGet      op = iota // gRPC Get
	opGetREST            // REST GET /v1/...
	opEnable             // a whole document for a provider that is off
	opPartial            // a changed field of a provider that is on
	opValidate           // validateOnly, whole or partial
	opDisable            // {"enabled": false}
	numOps
)

var opNames = [numOps]string{"get (gRPC)", "get (REST)", "enable", "partial update", "validate only", "disable"}

// Providers, in the order of model.enabled.
const (
	aws = iota
	azure
	gcp
	numProviders
)

var providerNames = [numProviders]string{"awsKms", "azureKeyVault", "googleCloudKms"}

var regions = []string{"US_EAST_1", "US_WEST_2", "EU_WEST_1", "EU_CENTRAL_1", "AP_SOUTHEAST_2", "SA_EAST_1"}

// project is the driver's model of one project. Only the worker holding the
// project (taken from load.free) touches it.
type project struct {
	id      string
	gcpRole bool // this project's Google Cloud KMS uses a role, else a key
	enabled [numProviders]bool
	// The value the last change set, checked in answers and at the end.
	awsRegion, azureKey, gcpKey string
	n                           int // changes so far, to vary values
}

// load drives the daemon and records what happened.
type load struct {
	cfg      config
	api      encryptionv1.EncryptionServiceClient
	hc       *http.Client
	restBase string
	projects []*project
	free     chan *project
	secret   [numProviders]string // recognisable secret values sent
	rec      *recorder
}

func newLoad(cfg config, api encryptionv1.EncryptionServiceClient, hc *http.Client, restBase string) *load {
	l := &load{cfg: cfg, api: api, hc: hc, restBase: restBase, free: make(chan *project, cfg.groups)}
	for i := range cfg.groups {
		p := &project{id: procs.RandomHex(12), gcpRole: i%2 == 0}
		l.projects = append(l.projects, p)
		l.free <- p
	}
	for i := range l.secret {
		l.secret[i] = "soak-" + providerNames[i] + "-secret-" + procs.RandomHex(8)
	}
	return l
}

// secrets lists every secret value the load sends.
func (l *load) secrets() []string {
	out := l.secret[:]
	// The GCP secret travels inside a JSON string; look for it as such too.
	return append(slices.Clone(out), fmt.Sprintf("%q", l.secret[gcp]))
}

// run paces calls at cfg.rate for cfg.duration and returns the results.
func (l *load) run(ctx context.Context, s *sampler, progress io.Writer) (*results, error) {
	loadCtx, stop := context.WithTimeout(ctx, l.cfg.duration)
	defer stop()
	l.rec = newRecorder(time.Now(), l.cfg.statuses)
	res := &results{started: l.rec.start}
	res.first = s.take(ctx)

	tokens := make(chan struct{}, l.cfg.workers)
	var wg sync.WaitGroup
	for range l.cfg.workers {
		wg.Go(func() {
			for range tokens {
				l.one(context.WithoutCancel(ctx))
			}
		})
	}

	interval := time.Duration(float64(time.Second) / l.cfg.rate)
	pace := time.NewTicker(interval)
	defer pace.Stop()
	windows := time.NewTicker(l.cfg.window)
	defer windows.Stop()
	warmup := time.After(l.cfg.warmup)
	if l.cfg.warmup == 0 {
		res.baseline = s.take(ctx)
	}
loop:
	for {
		select {
		case <-loadCtx.Done():
			break loop
		case <-pace.C:
			select {
			case tokens <- struct{}{}:
			default:
				l.rec.skip()
			}
		case <-warmup:
			res.baseline = s.take(ctx)
			fmt.Fprintf(progress, "warm-up done: RSS %s, heap %s, %d goroutines\n", mib(res.baseline.rss), mib(res.baseline.heapInuse), res.baseline.goroutines)
		case <-windows.C:
			w := l.rec.rotate(s.take(ctx))
			fmt.Fprintln(progress, w.line())
		}
	}
	close(tokens)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	res.final = s.take(ctx)
	w := l.rec.rotate(res.final)
	if w.calls > 0 {
		fmt.Fprintln(progress, w.line())
	}
	res.elapsed = time.Since(res.started)
	l.rec.fill(res)
	return res, nil
}

// one makes one call: a Get on any project, or a change of a free project.
func (l *load) one(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if rand.IntN(2) == 0 {
		p := l.projects[rand.IntN(len(l.projects))]
		if rand.IntN(4) == 0 {
			start := time.Now()
			err := l.getREST(ctx, p.id)
			l.rec.record(opGetREST, time.Since(start), err)
			return
		}
		start := time.Now()
		resp, err := l.api.GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: p.id})
		if err == nil && (resp.GetAwsKms() == nil || resp.GetAzureKeyVault() == nil || resp.GetGoogleCloudKms() == nil) {
			err = fmt.Errorf("Get answered without every provider: %v", resp)
		}
		l.rec.record(opGet, time.Since(start), err)
		return
	}
	p := <-l.free
	defer func() { l.free <- p }()
	l.change(ctx, p)
}

// change makes one change to p, chosen by its state, and checks the answer
// against the model.
func (l *load) change(ctx context.Context, p *project) {
	prov := rand.IntN(numProviders)
	var o op
	switch r := rand.IntN(100); {
	case !p.enabled[prov] && r < 80:
		o = opEnable
	case !p.enabled[prov]:
		o = opValidate
	case r < 55:
		o = opPartial
	case r < 70:
		o = opValidate
	default:
		o = opDisable
	}
	p.n++
	next := *p // the model after the change
	req := &encryptionv1.UpdateEncryptionAtRestRequest{GroupId: p.id, ValidateOnly: o == opValidate}
	whole := !p.enabled[prov] // enable, or validate an enable
	switch {
	case o == opDisable:
		req.Config = l.disable(prov)
		next.enabled[prov] = false
	case whole:
		req.Config = l.enable(&next, prov)
		next.enabled[prov] = true
	default:
		req.Config = l.partial(&next, prov)
	}
	start := time.Now()
	resp, err := l.api.UpdateEncryptionAtRest(ctx, req)
	if err == nil {
		err = checkAnswer(resp, &next, prov)
	}
	l.rec.record(o, time.Since(start), err)
	if err == nil && o != opValidate {
		*p = next
	}
}

func (l *load) enable(next *project, prov int) *encryptionv1.ProviderConfig {
	n := next.n
	switch prov {
	case aws:
		next.awsRegion = regions[n%len(regions)]
		c := &encryptionv1.AwsKms{
			Enabled:             proto.Bool(true),
			CustomerMasterKeyId: proto.String(fmt.Sprintf("arn:aws:kms:us-east-1:123456789012:key/%08x-12ab-34cd-56ef-1234567890ab", n)),
			Region:              proto.String(next.awsRegion),
		}
		if n%2 == 0 {
			c.RoleId = proto.String(procs.RandomHex(12))
		} else {
			c.AccessKeyId, c.SecretAccessKey = proto.String("AKIAIOSFODNN7EXAMPLE"), proto.String(l.secret[aws])
		}
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: c}}
	case azure:
		next.azureKey = fmt.Sprintf("https://soak.vault.azure.net/keys/key/%032x", n)
		c := &encryptionv1.AzureKeyVault{
			Enabled:           proto.Bool(true),
			AzureEnvironment:  proto.String("AZURE"),
			SubscriptionId:    proto.String("d8c4c9c2-4b1a-4c6e-9d2a-3e4f5a6b7c8d"),
			ResourceGroupName: proto.String("rg-soak"),
			KeyVaultName:      proto.String("soak"),
			KeyIdentifier:     proto.String(next.azureKey),
		}
		if n%2 == 0 {
			c.RoleId = proto.String(procs.RandomHex(12))
		} else {
			c.ClientId = proto.String("b6a2a7a0-2f9e-4a4c-9b0e-1c2d3e4f5a6b")
			c.TenantId = proto.String("c7b3b8b1-3a0f-4b5d-8c1f-2d3e4f5a6b7c")
			c.Secret = proto.String(l.secret[azure])
		}
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AzureKeyVault{AzureKeyVault: c}}
	default:
		next.gcpKey = fmt.Sprintf("projects/soak/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/%d", n)
		c := &encryptionv1.GoogleCloudKms{Enabled: proto.Bool(true), KeyVersionResourceId: proto.String(next.gcpKey)}
		if next.gcpRole {
			c.RoleId = proto.String(procs.RandomHex(12))
		} else {
			key, _ := json.Marshal(map[string]string{"type": "service_account", "private_key": l.secret[gcp]})
			c.ServiceAccountKey = proto.String(string(key))
		}
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: c}}
	}
}

func (l *load) partial(next *project, prov int) *encryptionv1.ProviderConfig {
	n := next.n
	switch prov {
	case aws:
		next.awsRegion = regions[n%len(regions)]
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{Region: proto.String(next.awsRegion)}}}
	case azure:
		next.azureKey = fmt.Sprintf("https://soak.vault.azure.net/keys/key/%032x", n)
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AzureKeyVault{AzureKeyVault: &encryptionv1.AzureKeyVault{KeyIdentifier: proto.String(next.azureKey)}}}
	default:
		next.gcpKey = fmt.Sprintf("projects/soak/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/%d", n)
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: &encryptionv1.GoogleCloudKms{KeyVersionResourceId: proto.String(next.gcpKey)}}}
	}
}

func (l *load) disable(prov int) *encryptionv1.ProviderConfig {
	switch prov {
	case aws:
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{Enabled: proto.Bool(false)}}}
	case azure:
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AzureKeyVault{AzureKeyVault: &encryptionv1.AzureKeyVault{Enabled: proto.Bool(false)}}}
	default:
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: &encryptionv1.GoogleCloudKms{Enabled: proto.Bool(false)}}}
	}
}

// checkAnswer compares an Update's answer, for provider prov, with the
// model of the project after the change.
func checkAnswer(resp *encryptionv1.EncryptionAtRest, want *project, prov int) error {
	var enabled bool
	var value, wantValue string
	switch prov {
	case aws:
		enabled, value, wantValue = resp.GetAwsKms().GetEnabled(), resp.GetAwsKms().GetRegion(), want.awsRegion
	case azure:
		enabled, value, wantValue = resp.GetAzureKeyVault().GetEnabled(), resp.GetAzureKeyVault().GetKeyIdentifier(), want.azureKey
	default:
		enabled, value, wantValue = resp.GetGoogleCloudKms().GetEnabled(), resp.GetGoogleCloudKms().GetKeyVersionResourceId(), want.gcpKey
	}
	if enabled != want.enabled[prov] || enabled && value != wantValue {
		return fmt.Errorf("answer shows %s enabled=%v %q, want enabled=%v %q", providerNames[prov], enabled, value, want.enabled[prov], wantValue)
	}
	return nil
}

// getREST reads a project over REST.
func (l *load) getREST(ctx context.Context, groupID string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.restBase+"/v1/groups/"+groupID+"/encryptionAtRest", nil)
	if err != nil {
		return err
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &restError{status: resp.StatusCode, body: string(b)}
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil || doc["awsKms"] == nil || doc["azureKeyVault"] == nil || doc["googleCloudKms"] == nil {
		return fmt.Errorf("REST GET answered %.200s, want every provider", b)
	}
	return nil
}

// restError is a non-200 REST answer.
type restError struct {
	status int
	body   string
}

func (e *restError) Error() string { return fmt.Sprintf("HTTP %d: %.300s", e.status, e.body) }

// injectedMarker is the detail of every error the emulator injects; the
// daemon passes Atlas's detail on in its message.
const injectedMarker = "Injected fault."

// classify names an error and says whether an injected Atlas fault explains
// it: UNAVAILABLE (a 5xx change, or a read whose retries ran out) or
// RESOURCE_EXHAUSTED (429 after the retries), with the emulator's detail,
// from Atlas's domain. Anything else is unexplained.
func classify(err error, statuses []int) (class string, injected bool) {
	if re, ok := err.(*restError); ok {
		class = fmt.Sprintf("REST %d", re.status)
		injected = (re.status == http.StatusServiceUnavailable || re.status == http.StatusTooManyRequests) &&
			strings.Contains(re.body, injectedMarker)
		return class, injected
	}
	st, ok := status.FromError(err)
	if !ok {
		return "not a status: " + err.Error(), false
	}
	info := failure.Parse(st).Info
	class = st.Code().String()
	if info.Reason != "" {
		class += " " + info.Reason
	}
	if info.Domain != failure.DomainAtlas || !strings.Contains(st.Message(), injectedMarker) {
		return class, false
	}
	if !slices.Contains(statuses, info.HTTPStatus) {
		return class, false
	}
	switch {
	case st.Code() == codes.Unavailable && info.HTTPStatus >= 500:
		return class, true
	case st.Code() == codes.ResourceExhausted && info.HTTPStatus == 429:
		return class, true
	}
	return class, false
}

// verifyState compares every project at the emulator with the model: a
// change applied that the caller was told failed, or the reverse, shows here.
func (l *load) verifyState(ctx context.Context, emu *procs.Emulator) []string {
	var out []string
	for _, p := range l.projects {
		st, err := emu.State(ctx, p.id)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: reading the state: %v", p.id, err))
			continue
		}
		values := [numProviders][2]string{{"region", p.awsRegion}, {"keyIdentifier", p.azureKey}, {"keyVersionResourceID", p.gcpKey}}
		for prov, name := range providerNames {
			doc, _ := st[name].(map[string]any)
			enabled, _ := doc["enabled"].(bool)
			got, _ := doc[values[prov][0]].(string)
			if enabled != p.enabled[prov] || enabled && got != values[prov][1] {
				out = append(out, fmt.Sprintf("%s %s: Atlas has enabled=%v %s=%q, the model enabled=%v %q",
					p.id, name, enabled, values[prov][0], got, p.enabled[prov], values[prov][1]))
			}
		}
	}
	return out
}
