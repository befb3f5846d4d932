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
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/cmd/internal/procs"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
)

// callTimeout is every call's deadline: far beyond the daemon's own Atlas
// retry budget (10 s) and a chaos run's longest outage, so a deadline
// error is never expected, and a change's audit record is always written
// before its caller gives up on it.
const callTimeout = 60 * time.Second

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

// valueFields name, per provider, the field whose value every change that
// is not a disable sets to a value of its own (the project's change
// number is in it), so that the state at Atlas names the change that set
// it.
var valueFields = [numProviders]string{"customerMasterKeyID", "keyIdentifier", "keyVersionResourceID"}

var regions = []string{"US_EAST_1", "US_WEST_2", "EU_WEST_1", "EU_CENTRAL_1", "AP_SOUTHEAST_2", "SA_EAST_1"}

// project is the driver's model of one project. Only the worker holding the
// project (taken from load.free) touches it, so the project's changes are
// made one at a time, in order.
type project struct {
	id      string
	gcpRole bool // this project's Google Cloud KMS uses a role, else a key
	enabled [numProviders]bool
	// value is each enabled provider's value field as the last change set
	// it, checked in answers and at the end.
	value [numProviders]string
	n     int // changes so far, to make each change's value its own
	// pending is a change whose outcome the driver does not know (-chaos:
	// no answer, or the daemon said it is unknown). The next call on the
	// project reads it first, to learn the truth and note it in the change.
	pending *sentChange
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
	ledger   ledger       // every change sent, for the chaos run's accounting
	inFlight atomic.Int64 // calls under way
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
// With c, the chaos events run meanwhile (see chaos.run).
func (l *load) run(ctx context.Context, s *sampler, progress io.Writer, c *chaos) (*results, error) {
	loadCtx, stop := context.WithTimeout(ctx, l.cfg.duration)
	defer stop()
	l.rec = newRecorder(time.Now(), l.cfg.statuses)
	res := &results{started: l.rec.start}
	res.first = s.take(ctx)
	var events sync.WaitGroup
	if c != nil {
		l.rec.explain = c.explain
		end, _ := loadCtx.Deadline()
		events.Go(func() { c.run(loadCtx, end) })
	}

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
	events.Wait() // the event under way ends first
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
	l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	if rand.IntN(2) == 0 {
		p := l.projects[rand.IntN(len(l.projects))]
		if rand.IntN(4) == 0 {
			ctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			start := time.Now()
			err := l.getREST(ctx, p.id)
			l.rec.record(opGetREST, start, time.Now(), err)
			return
		}
		l.get(ctx, p.id)
		return
	}
	p := <-l.free
	defer func() { l.free <- p }()
	if p.pending != nil && !l.reread(ctx, p) {
		return // still unknown: the next change of p tries again
	}
	l.change(ctx, p)
}

// get reads a project over gRPC and returns what its answer says of each
// provider; ok is false when the call failed.
func (l *load) get(ctx context.Context, groupID string) (st [numProviders]providerState, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	resp, err := l.api.GetEncryptionAtRest(ctx, &encryptionv1.GetEncryptionAtRestRequest{GroupId: groupID})
	if err == nil && (resp.GetAwsKms() == nil || resp.GetAzureKeyVault() == nil || resp.GetGoogleCloudKms() == nil) {
		err = fmt.Errorf("Get answered without every provider: %v", resp)
	}
	l.rec.record(opGet, start, time.Now(), err)
	if err != nil {
		return st, false
	}
	return answerState(resp), true
}

// reread reads p after a change whose outcome the driver does not know,
// notes in that change what Atlas then showed, and makes the model what
// Atlas holds. The read is fresh: the daemon shares no Get that started
// before a change finished. It reports whether the read succeeded.
func (l *load) reread(ctx context.Context, p *project) bool {
	st, ok := l.get(ctx, p.id)
	if !ok {
		return false
	}
	seen := st[p.pending.provider]
	p.pending.seen = &seen
	p.pending = nil
	for prov := range numProviders {
		p.enabled[prov], p.value[prov] = st[prov].enabled, st[prov].value
	}
	return true
}

// change makes one change to p, chosen by its state, checks the answer
// against the model, and enters it in the ledger.
func (l *load) change(ctx context.Context, p *project) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
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
	c := &sentChange{group: p.id, provider: prov, action: auditAction(o, whole), start: time.Now()}
	if o != opDisable {
		c.value = next.value[prov]
	}
	resp, rpcErr := l.api.UpdateEncryptionAtRest(ctx, req)
	c.end = time.Now()
	c.code, c.answered = answered(rpcErr)
	err := rpcErr
	if err == nil {
		err = checkAnswer(resp, &next, prov)
	}
	l.rec.record(o, c.start, c.end, err)
	l.ledger.add(c)
	switch {
	case err == nil && o != opValidate:
		*p = next
	case err == nil: // validated: nothing changed
	case l.cfg.chaos && (rpcErr == nil || !knownUnchanged(c.action, rpcErr)):
		// No answer, an unknown outcome, or an answer that contradicts the
		// model: read the project before its next change.
		p.pending = c
	}
}

// auditAction is how the audit log names a change of operation o; whole
// says that it carries a provider's whole document.
func auditAction(o op, whole bool) string {
	switch {
	case o == opValidate:
		return "validate"
	case o == opDisable:
		return "disable"
	case whole:
		return "enable"
	}
	return "update"
}

func (l *load) enable(next *project, prov int) *encryptionv1.ProviderConfig {
	n := next.n
	next.value[prov] = changeValue(prov, n)
	switch prov {
	case aws:
		c := &encryptionv1.AwsKms{
			Enabled:             proto.Bool(true),
			CustomerMasterKeyId: proto.String(next.value[prov]),
			Region:              proto.String(regions[n%len(regions)]),
		}
		if n%2 == 0 {
			c.RoleId = proto.String(procs.RandomHex(12))
		} else {
			c.AccessKeyId, c.SecretAccessKey = proto.String("AKIAIOSFODNN7EXAMPLE"), proto.String(l.secret[aws])
		}
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: c}}
	case azure:
		c := &encryptionv1.AzureKeyVault{
			Enabled:           proto.Bool(true),
			AzureEnvironment:  proto.String("AZURE"),
			SubscriptionId:    proto.String("d8c4c9c2-4b1a-4c6e-9d2a-3e4f5a6b7c8d"),
			ResourceGroupName: proto.String("rg-soak"),
			KeyVaultName:      proto.String("soak"),
			KeyIdentifier:     proto.String(next.value[prov]),
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
		c := &encryptionv1.GoogleCloudKms{Enabled: proto.Bool(true), KeyVersionResourceId: proto.String(next.value[prov])}
		if next.gcpRole {
			c.RoleId = proto.String(procs.RandomHex(12))
		} else {
			key, _ := json.Marshal(map[string]string{"type": "service_account", "private_key": l.secret[gcp]})
			c.ServiceAccountKey = proto.String(string(key))
		}
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: c}}
	}
}

// partial changes the value field of an enabled provider (and, for AWS,
// its region too).
func (l *load) partial(next *project, prov int) *encryptionv1.ProviderConfig {
	n := next.n
	next.value[prov] = changeValue(prov, n)
	switch prov {
	case aws:
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AwsKms{AwsKms: &encryptionv1.AwsKms{
			CustomerMasterKeyId: proto.String(next.value[prov]), Region: proto.String(regions[n%len(regions)]),
		}}}
	case azure:
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_AzureKeyVault{AzureKeyVault: &encryptionv1.AzureKeyVault{KeyIdentifier: proto.String(next.value[prov])}}}
	default:
		return &encryptionv1.ProviderConfig{Provider: &encryptionv1.ProviderConfig_GoogleCloudKms{GoogleCloudKms: &encryptionv1.GoogleCloudKms{KeyVersionResourceId: proto.String(next.value[prov])}}}
	}
}

// changeValue is the value field of provider prov written by a project's
// change number n: no other change of the project writes it.
func changeValue(prov, n int) string {
	switch prov {
	case aws:
		return fmt.Sprintf("arn:aws:kms:us-east-1:123456789012:key/%08x-12ab-34cd-56ef-1234567890ab", n)
	case azure:
		return fmt.Sprintf("https://soak.vault.azure.net/keys/key/%032x", n)
	default:
		return fmt.Sprintf("projects/soak/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/%d", n)
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
	got := answerState(resp)[prov]
	if w := (providerState{want.enabled[prov], want.value[prov]}); !got.equal(w) {
		return fmt.Errorf("answer shows %s %v, want %v", providerNames[prov], got, w)
	}
	return nil
}

// answerState is what an answer says of each provider.
func answerState(resp *encryptionv1.EncryptionAtRest) [numProviders]providerState {
	return [numProviders]providerState{
		{resp.GetAwsKms().GetEnabled(), resp.GetAwsKms().GetCustomerMasterKeyId()},
		{resp.GetAzureKeyVault().GetEnabled(), resp.GetAzureKeyVault().GetKeyIdentifier()},
		{resp.GetGoogleCloudKms().GetEnabled(), resp.GetGoogleCloudKms().GetKeyVersionResourceId()},
	}
}

// getREST reads a project over REST.
func (l *load) getREST(ctx context.Context, groupID string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.restBase+"/v1/groups/"+groupID+"/encryptionAtRest", nil)
	if err != nil {
		return err
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return &noAnswer{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &noAnswer{err}
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

// noAnswer is a REST call that got no complete HTTP answer.
type noAnswer struct{ err error }

func (e *noAnswer) Error() string { return "no answer: " + e.err.Error() }
func (e *noAnswer) Unwrap() error { return e.err }

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

// atlasStates reads every project's state from the emulator.
func (l *load) atlasStates(ctx context.Context, emu *procs.Emulator) (map[string][numProviders]providerState, error) {
	out := make(map[string][numProviders]providerState, len(l.projects))
	for _, p := range l.projects {
		doc, err := emu.State(ctx, p.id)
		if err != nil {
			return nil, fmt.Errorf("reading the state of %s at Atlas: %w", p.id, err)
		}
		out[p.id] = docState(doc)
	}
	return out, nil
}

// verifyState compares every project at Atlas with the model: a change
// applied that the caller was told failed, or the reverse, shows here.
func (l *load) verifyState(states map[string][numProviders]providerState) []string {
	var out []string
	for _, p := range l.projects {
		for prov, got := range states[p.id] {
			if want := (providerState{p.enabled[prov], p.value[prov]}); !got.equal(want) {
				out = append(out, fmt.Sprintf("%s %s: Atlas has %v, the model %v", p.id, providerNames[prov], got, want))
			}
		}
	}
	return out
}
