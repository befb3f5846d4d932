// Package server implements atlas.encryption.v1.EncryptionService on top of
// the Atlas Administration API client in package atlas.
//
// Start with Server.UpdateEncryptionAtRest: it checks a request against
// Atlas's update rules (rules.go, one entry per rule of the README), reads
// the provider's current state when the rules need it, and sends Atlas
// exactly the document Atlas expects (translate.go). Everything the service
// knows about a key provider is in the provider table (provider.go).
// errors.go maps the failures of Atlas calls to gRPC statuses, built with
// package failure, which owns the error vocabulary.
package server

import (
	"context"
	"sync/atomic"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// Atlas is what the service needs from the Atlas Administration API.
// *atlas.Client implements it.
type Atlas interface {
	GetEncryptionAtRest(ctx context.Context, groupID string) (*atlas.EncryptionAtRest, error)
	UpdateEncryptionAtRest(ctx context.Context, groupID string, update *atlas.EncryptionAtRest) (*atlas.EncryptionAtRest, error)
}

// Server implements encryptionv1.EncryptionServiceServer.
type Server struct {
	encryptionv1.UnimplementedEncryptionServiceServer
	atlas   Atlas
	opts    options
	gets    flights       // shares concurrent Gets of one project
	groups  groups        // serializes changes of one project
	changes atomic.Uint64 // finished changes; see GetEncryptionAtRest
}

var _ encryptionv1.EncryptionServiceServer = (*Server)(nil)

// Option configures a Server.
type Option func(*options)

type options struct {
	observeValid func(groupID, provider string, enabled, valid bool)
}

// WithValidObserver calls fn with every provider's `enabled` and `valid`
// flags each time Atlas reports the project's configuration (provider is
// the Atlas name: "awsKms", "azureKeyVault" or "googleCloudKms"), so that a
// metric can show an enabled key that stopped working. Default: none.
func WithValidObserver(fn func(groupID, provider string, enabled, valid bool)) Option {
	return func(o *options) { o.observeValid = fn }
}

// New returns a Server that calls Atlas through client.
func New(client Atlas, opts ...Option) *Server {
	s := &Server{atlas: client}
	for _, opt := range opts {
		opt(&s.opts)
	}
	return s
}

// Mutation describes an UpdateEncryptionAtRest request for the audit log:
// never a value, only names.
type Mutation struct {
	GroupID  string
	Provider string   // Atlas's name of the provider: "awsKms", "azureKeyVault", "googleCloudKms"; "" if none
	Action   string   // "enable", "update", "disable" or "validate"
	Fields   []string // Atlas JSON names of the fields the request sets, sorted
}
