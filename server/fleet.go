package server

import (
	"context"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/failure"
	"github.com/encryptiond/encryptiond/server/paging"
	"github.com/encryptiond/encryptiond/server/watch"
)

// This file watches the fleet: WatchEncryptionAtRest streams one project's
// configuration as it changes, and ListEncryptionAtRest reads every
// project the credentials can see.
//
// A watched project is polled by one loop of package watch, whatever the
// number of its watchers (the monitor, -monitor, is one more): every
// -watch-interval while the polls succeed; after a failure sooner, backing
// off from a second up to the interval; after a 429, not before the end of
// Atlas's Retry-After, for every project (atlas.Client.NotBefore). A change
// made through this process is pushed to the watchers at once
// (UpdateEncryptionAtRest), or polled at once when its result is not known
// (a change whose outcome is unknown, a private endpoint's change).

// Defaults of the watches.
const (
	// DefaultWatchInterval is how often a watched project is polled,
	// unless WithWatchInterval says otherwise.
	DefaultWatchInterval = time.Minute
	// DefaultWatchFailures is how many polls in a row may fail before the
	// watchers get the error, unless WithWatchFailures says otherwise.
	DefaultWatchFailures = 5
	// DefaultConcurrency is how many projects ListEncryptionAtRest reads at
	// once, unless WithConcurrency says otherwise.
	DefaultConcurrency = 8
)

// pollRetry paces the polls after a failure: from a second, doubling, with
// jitter, up to the watch interval.
const pollRetry = time.Second

// What a poll reads, as WithPollObserver names it.
const (
	PollEncryptionAtRest = "encryption_at_rest"
	PollPrivateEndpoint  = "private_endpoint"
)

// configWatches are the watches of projects' configurations: one poll loop
// per watched project.
type configWatches = watch.Registry[string, *encryptionv1.EncryptionAtRest]

func (s *Server) newConfigWatches() *configWatches {
	interval := s.opts.watchInterval
	return watch.New(s.pollConfig, func(a, b *encryptionv1.EncryptionAtRest) bool { return proto.Equal(a, b) },
		watch.WithSchedule(func() watch.Schedule { return &pollSchedule{interval: interval} }),
		watch.WithClock(s.opts.watchClock),
		watch.WithMaxFailures(s.opts.watchFailures),
	)
}

// pollSchedule polls every interval while the polls succeed, and after a
// failure backs off from pollRetry up to interval.
type pollSchedule struct {
	interval time.Duration
	failures int
}

func (p *pollSchedule) Next(r watch.Result) time.Duration {
	if r.Err == nil {
		p.failures = 0
		return p.interval
	}
	p.failures++
	return atlas.RetryPolicy{InitialBackoff: pollRetry, MaxBackoff: p.interval}.Backoff(p.failures)
}

// pollConfig reads a watched project's configuration: one GET, shared with
// concurrent Gets, once Atlas's Retry-After, if any, has passed. Failures
// that another poll may cure are retried on the schedule; a project that
// does not exist, or that the credentials may not read, ends the watch.
func (s *Server) pollConfig(ctx context.Context, groupID string) (*encryptionv1.EncryptionAtRest, error) {
	if err := s.waitForRetryAfter(ctx); err != nil {
		return nil, err
	}
	cfg, err := s.read(ctx, groupID)
	if ctx.Err() != nil {
		return nil, ctx.Err() // the last watcher left: not a failed poll
	}
	s.observePoll(PollEncryptionAtRest, err)
	if err != nil {
		st := fromAtlas(ctx, err, groupID, nil, nil)
		switch status.Code(st) {
		case codes.NotFound, codes.PermissionDenied, codes.InvalidArgument, codes.FailedPrecondition:
			return nil, watch.Permanent(st)
		}
		return nil, st
	}
	return toProto(cfg), nil
}

// observePoll tells the poll observer how a poll of what ended.
func (s *Server) observePoll(what string, err error) {
	if fn := s.opts.observePoll; fn != nil {
		fn(what, err)
	}
}

// retryAfter is what an Atlas client may say of Atlas's last Retry-After:
// *atlas.Client does.
type retryAfter interface {
	NotBefore() time.Time
}

// waitForRetryAfter waits, on the watch clock, until the end of the last
// Retry-After Atlas sent this process, if it has not passed; it returns
// ctx's error if ctx ends first.
func (s *Server) waitForRetryAfter(ctx context.Context) error {
	ra, ok := s.atlas.(retryAfter)
	if !ok {
		return nil
	}
	d := time.Until(ra.NotBefore())
	if d <= 0 {
		return nil
	}
	t := s.opts.watchClock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WatchEncryptionAtRest streams a project's configuration, then each
// change; see the .proto.
func (s *Server) WatchEncryptionAtRest(req *encryptionv1.WatchEncryptionAtRestRequest, stream grpc.ServerStreamingServer[encryptionv1.EncryptionAtRest]) error {
	var vs violations
	checkGroupID(&vs, req.GetGroupId())
	if err := vs.err("", nil); err != nil {
		return err
	}
	return s.Watch(stream.Context(), req.GetGroupId(), stream.Send)
}

// Watch calls send with the project's configuration as last read, then
// with each change, until ctx ends, send fails, or the project's polls give
// up (the status of the last failure). It shares the project's polls with
// every other watcher, WatchEncryptionAtRest's included: the monitor
// (-monitor) watches through it. Its error when ctx ends says why, as a
// status.
func (s *Server) Watch(ctx context.Context, groupID string, send func(*encryptionv1.EncryptionAtRest) error) error {
	w := s.configs.Watch(groupID)
	defer w.Stop()
	for {
		cfg, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return watchEndedWith(ctx, failure.Info{Domain: failure.DomainService, GroupID: groupID}, "the watch of project "+groupID)
			}
			return err // a status from pollConfig
		}
		if err := send(cfg); err != nil {
			return err
		}
	}
}

// watchEndedWith is the status of a watch (what) whose context ended:
// shutdown, the caller's deadline, or the caller's cancel.
func watchEndedWith(ctx context.Context, info failure.Info, what string) error {
	code, reason, httpStatus := ended(ctx)
	info.Reason, info.HTTPStatus = reason, httpStatus
	msg := map[codes.Code]string{
		codes.Unavailable:      "encryptiond is shutting down: it ended " + what + "; watch again",
		codes.DeadlineExceeded: "the caller's deadline ended " + what,
		codes.Canceled:         "the caller cancelled " + what,
	}[code]
	return failure.New(code, msg, info)
}

// ListEncryptionAtRest returns a page of every visible project's
// configuration; see the .proto.
//
// Round trips: the pages of Atlas's project list the page needs (500
// projects a page; a caller that may read few projects may need several),
// then one GET per project on the page, -atlas-concurrency at a time,
// shared with concurrent Gets and polls of the project. The page token
// carries Atlas's page and the position in it, signed (paging.Signer).
func (s *Server) ListEncryptionAtRest(ctx context.Context, req *encryptionv1.ListEncryptionAtRestRequest) (*encryptionv1.ListEncryptionAtRestResponse, error) {
	var vs violations
	size, _ := pageSize(&vs, req.GetPageSize())
	at := paging.Cursor{Page: 1}
	if token := req.GetPageToken(); token != "" {
		c, err := s.tokens.Parse(token)
		if err != nil {
			vs.add("page_token", "pageToken is "+err.Error())
		}
		at = c
	}
	if err := vs.err("", nil); err != nil {
		return nil, err
	}

	groups, next, err := s.visibleGroups(ctx, at, size, readable(ctx))
	if err != nil {
		return nil, fromAtlas(ctx, err, "", nil, nil)
	}
	out := &encryptionv1.ListEncryptionAtRestResponse{Projects: make([]*encryptionv1.ProjectEncryptionAtRest, len(groups))}
	if next != nil {
		out.NextPageToken = s.tokens.Token(*next)
	}
	var g errgroup.Group
	g.SetLimit(s.opts.concurrency)
	for i, group := range groups {
		project := &encryptionv1.ProjectEncryptionAtRest{GroupId: group.ID, GroupName: group.Name}
		out.Projects[i] = project
		g.Go(func() error {
			cfg, err := s.read(ctx, group.ID)
			if err != nil {
				project.Error = status.Convert(fromAtlas(ctx, err, group.ID, nil, nil)).Proto()
				return nil
			}
			project.EncryptionAtRest = toProto(cfg)
			return nil
		})
	}
	_ = g.Wait() // the reads report their errors per project
	if err := ctx.Err(); err != nil {
		return nil, fromAtlas(ctx, err, "", nil, nil)
	}
	return out, nil
}

// maxGroupPages bounds the pages of Atlas's project list one
// ListEncryptionAtRest call reads, for a caller that may read few of many
// projects: 20 pages of 500. A page that reaches it ends early, with a
// next_page_token.
const maxGroupPages = 20

// visibleGroups returns up to size projects from Atlas's list, starting at
// cursor at, that allowed lets through (nil: every one), and the cursor of
// the next, nil at the end of the list. It reads no page of Atlas's it
// does not need: a full page ends where its last project is, so the next
// may find nothing to show when the rest is filtered out.
func (s *Server) visibleGroups(ctx context.Context, at paging.Cursor, size int, allowed func(string) bool) ([]atlas.Group, *paging.Cursor, error) {
	var out []atlas.Group
	for pages := 1; ; pages++ {
		opts := atlas.ListOptions{PageNum: at.Page, ItemsPerPage: paging.MaxSize}
		page, err := s.atlas.ListGroups(ctx, opts)
		if err != nil {
			return nil, nil, err
		}
		more := len(page.Results) > 0 && page.HasNext(opts)
		for i := at.Offset; i < len(page.Results); i++ {
			g := page.Results[i]
			if allowed != nil && !allowed(g.ID) {
				continue
			}
			out = append(out, g)
			if len(out) < size {
				continue
			}
			// The page is full: the next one starts after g, on this page
			// of Atlas's or the next, if Atlas has more.
			switch {
			case i+1 < len(page.Results):
				return out, &paging.Cursor{Page: at.Page, Offset: i + 1}, nil
			case more:
				return out, &paging.Cursor{Page: at.Page + 1}, nil
			}
			return out, nil, nil
		}
		if !more {
			return out, nil, nil
		}
		at = paging.Cursor{Page: at.Page + 1}
		if pages == maxGroupPages {
			return out, &at, nil
		}
	}
}

// readableKey is the context key of NewReadableContext.
type readableKey struct{}

// NewReadableContext returns ctx carrying allowed, which says which
// projects the caller may read: ListEncryptionAtRest lists only those.
// Without it, a list holds every project the credentials can see. The
// authorization interceptor (package authz) sets it from its policy.
func NewReadableContext(ctx context.Context, allowed func(groupID string) bool) context.Context {
	return context.WithValue(ctx, readableKey{}, allowed)
}

// readable returns ctx's filter of projects, nil for every project.
func readable(ctx context.Context) func(string) bool {
	f, _ := ctx.Value(readableKey{}).(func(string) bool)
	return f
}

// read reads a project's configuration: one GET, shared by concurrent
// reads of the project (Gets, polls, lists) that started after the last
// change made through this process (see GetEncryptionAtRest). It tells the
// valid observer what it read.
func (s *Server) read(ctx context.Context, groupID string) (*atlas.EncryptionAtRest, error) {
	key := groupID + "/" + strconv.FormatUint(s.changes.Load(), 10)
	cfg, err := s.gets.do(ctx, key, func(ctx context.Context) (*atlas.EncryptionAtRest, error) {
		return s.atlas.GetEncryptionAtRest(ctx, groupID)
	})
	if err == nil {
		s.observe(groupID, cfg)
	}
	return cfg, err
}
