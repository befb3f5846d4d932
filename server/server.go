// Package server implements atlas.encryption.v1.EncryptionService on top of
// the Atlas Administration API client in package atlas.
//
// Start with Server.UpdateEncryptionAtRest: it checks a request against
// Atlas's update rules (rules.go, one entry per rule of the README), reads
// the provider's current state when the rules need it, and sends Atlas
// exactly the document Atlas expects (translate.go). Everything the service
// knows about a key provider is in the provider table (provider.go).
// errors.go maps the failures of Atlas calls to gRPC statuses, built with
// package failure, which owns the error vocabulary. privateendpoints.go
// serves the private endpoints for encryption at rest, and their watches.
package server

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"time"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/paging"
	"github.com/encryptiond/encryptiond/server/watch"
)

// Atlas is what the service needs from the Atlas Administration API.
// *atlas.Client implements it.
type Atlas interface {
	GetEncryptionAtRest(ctx context.Context, groupID string) (*atlas.EncryptionAtRest, error)
	UpdateEncryptionAtRest(ctx context.Context, groupID string, update *atlas.EncryptionAtRest) (*atlas.EncryptionAtRest, error)
	ListClusters(ctx context.Context, groupID string) ([]atlas.Cluster, error)
	ListGroups(ctx context.Context, opts atlas.ListOptions) (*atlas.Page[atlas.Group], error)
	ListPrivateEndpoints(ctx context.Context, groupID, cloudProvider string, opts atlas.ListOptions) (*atlas.PrivateEndpointPage, error)
	GetPrivateEndpoint(ctx context.Context, groupID, cloudProvider, endpointID string) (*atlas.PrivateEndpoint, error)
	CreatePrivateEndpoint(ctx context.Context, groupID, cloudProvider, regionName string) (*atlas.PrivateEndpoint, error)
	DeletePrivateEndpoint(ctx context.Context, groupID, cloudProvider, endpointID string) error
}

// Server implements encryptionv1.EncryptionServiceServer.
type Server struct {
	encryptionv1.UnimplementedEncryptionServiceServer
	atlas   Atlas
	opts    options
	gets    flights       // shares concurrent Gets of one project
	groups  groups        // serializes changes of one project
	changes atomic.Uint64 // finished changes; see GetEncryptionAtRest
	sending inflight      // PATCHes in flight; see patch
	// configs are the watches of projects' configurations (fleet.go).
	configs *configWatches
	// endpoints are the watches of private endpoints.
	endpoints *endpointWatches
	// tokens signs ListEncryptionAtRest's page tokens.
	tokens *paging.Signer
}

var _ encryptionv1.EncryptionServiceServer = (*Server)(nil)

// Option configures a Server.
type Option func(*options)

type options struct {
	observeValid           func(groupID, provider string, enabled, valid bool)
	observeRetry           func(provider string)
	rolePropagationTimeout time.Duration
	watchClock             watch.Clock
	watchInterval          time.Duration
	watchFailures          int
	concurrency            int
	observePoll            func(what string, err error)
	tokenKey               []byte
}

// WithValidObserver calls fn with every provider's `enabled` and `valid`
// flags each time Atlas reports the project's configuration (provider is
// the Atlas name: "awsKms", "azureKeyVault" or "googleCloudKms"), so that a
// metric can show an enabled key that stopped working. Default: none.
func WithValidObserver(fn func(groupID, provider string, enabled, valid bool)) Option {
	return func(o *options) { o.observeValid = fn }
}

// WithRolePropagationTimeout bounds how long a PATCH naming a Cloud
// Provider Access role is sent again while Atlas answers that the role
// cannot be used yet (IAM propagation), counted from the first attempt.
// Default: DefaultRolePropagationTimeout (3 minutes).
func WithRolePropagationTimeout(d time.Duration) Option {
	return func(o *options) { o.rolePropagationTimeout = d }
}

// WithRetryObserver calls fn each time a PATCH is sent again while its role
// propagates, with Atlas's name of the provider, so that a metric can count
// them. Default: none.
func WithRetryObserver(fn func(provider string)) Option {
	return func(o *options) { o.observeRetry = fn }
}

// WithWatchClock sets the clock on which watches wait between polls of
// Atlas, so that tests can move it. Default: the system clock.
func WithWatchClock(c watch.Clock) Option {
	return func(o *options) { o.watchClock = c }
}

// WithWatchInterval sets how often a watched project is polled while its
// polls succeed (WatchEncryptionAtRest, Watch). Default:
// DefaultWatchInterval; a d of 0 or less keeps it.
func WithWatchInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.watchInterval = d
		}
	}
}

// WithWatchFailures sets how many polls of a watched project may fail in a
// row before its watchers get the error. Default: DefaultWatchFailures; an
// n of 0 or less keeps it.
func WithWatchFailures(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.watchFailures = n
		}
	}
}

// WithConcurrency sets how many projects ListEncryptionAtRest reads at
// once. Default: DefaultConcurrency; an n of 0 or less keeps it.
func WithConcurrency(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.concurrency = n
		}
	}
}

// WithPollObserver calls fn after each poll of a watch, with what it read
// (PollEncryptionAtRest or PollPrivateEndpoint) and its error, nil on
// success, so that a metric can count them. Default: none.
func WithPollObserver(fn func(what string, err error)) Option {
	return func(o *options) { o.observePoll = fn }
}

// WithPageTokenKey sets the key that signs ListEncryptionAtRest's page
// tokens: replicas that share it accept each other's tokens. Default: a
// random key of the process, whose tokens no other process accepts.
func WithPageTokenKey(key []byte) Option {
	return func(o *options) { o.tokenKey = append([]byte(nil), key...) }
}

// New returns a Server that calls Atlas through client.
func New(client Atlas, opts ...Option) *Server {
	s := &Server{atlas: client, opts: options{
		rolePropagationTimeout: DefaultRolePropagationTimeout,
		watchInterval:          DefaultWatchInterval,
		watchFailures:          DefaultWatchFailures,
		concurrency:            DefaultConcurrency,
	}}
	for _, opt := range opts {
		opt(&s.opts)
	}
	if s.opts.watchClock == nil {
		s.opts.watchClock = watch.SystemClock()
	}
	key := s.opts.tokenKey
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // crypto/rand.Read never fails
	}
	s.tokens, _ = paging.NewSigner(key) // key is not empty
	s.configs = s.newConfigWatches()
	s.endpoints = s.newEndpointWatches()
	return s
}

// Record is what a call tells the audit log beyond its request and its
// answer. The audit interceptor puts one in the call's context with
// NewRecordContext; the service fills it.
type Record struct {
	// Attempts is how many times a change was sent to Atlas: 0 when it was
	// not sent, more than 1 when it was sent again while its role
	// propagated.
	Attempts int
	// Late, when set, hears Atlas's answer to a PATCH whose caller was
	// answered before it came (the caller left, or the shutdown cut the
	// call): nil when Atlas applied the change. It is called once, from
	// another goroutine, after the call has ended.
	Late func(err error)
}

type recordKey struct{}

// NewRecordContext returns ctx carrying rec.
func NewRecordContext(ctx context.Context, rec *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

// record returns the Record of ctx, or a throwaway one.
func record(ctx context.Context) *Record {
	if rec, ok := ctx.Value(recordKey{}).(*Record); ok {
		return rec
	}
	return &Record{}
}

// Mutation describes a request that changes a project, for the audit log:
// never a value, only names.
type Mutation struct {
	GroupID  string
	Provider string // Atlas's name of the provider: "awsKms", "azureKeyVault", "googleCloudKms"; "" if none
	// Action is "enable", "update", "disable" or "validate" for
	// UpdateEncryptionAtRest, ActionCreatePrivateEndpoint or
	// ActionDeletePrivateEndpoint.
	Action string
	Fields []string // Atlas JSON names of the fields the request sets, sorted
	// ValidateOnly marks a request that only checks: nothing changes.
	ValidateOnly bool
	// EndpointID is the private endpoint concerned, if known.
	EndpointID string
	// Attempts is how many times the change was sent to Atlas (Record).
	Attempts int
}
