package daemon

// How configuration is replaced while the daemon serves.
//
// The TLS files (-tls-cert, -tls-key, -tls-client-ca; tls.go) and the
// authorization policy (-authz-policy) are each a reloadable: its files
// are read and parsed when the daemon starts (a failure stops it), then
// read again
//
//   - every -reload-interval (5 s by default), and applied when their
//     content changed;
//   - whenever Config.Reload delivers (SIGHUP in cmd/encryptiond), and
//     applied whatever their content.
//
// The files' content is polled rather than watched with inotify
// (fsnotify): Kubernetes updates a Secret or ConfigMap volume, which is
// what cert-manager and most SPIFFE helpers write to, by pointing a
// "..data" symlink at a new directory. The file a path resolved to is
// never written; the path comes to resolve to another file. A watch on the
// path (inotify follows the symlink) sees no write, only the old file's
// removal, after which the watch is gone and must be set up again;
// watching directories instead works on Linux, but not on every filesystem
// a volume may be (NFS, FUSE, container file sharing). Reading a few
// kilobytes every few seconds costs nothing, sees every kind of update on
// every filesystem and needs no dependency; the price is up to one
// interval of delay, nothing against certificates renewed days before
// they expire.
//
// A reload parses the bytes it read and swaps the result in atomically:
// new TLS handshakes use the new certificate and client CAs while
// established connections keep theirs, and calls arriving after a policy
// swap are decided under the new policy. A reload that fails (a file
// missing or unreadable, bad PEM, a key that does not match the
// certificate, a policy error, which names its line) changes nothing: the
// previous configuration stays in force, and the next change or SIGHUP
// tries again.
//
// Every reload is logged (INFO "reloaded", ERROR "reload failed: …") and
// counted in encryptiond_config_reloads_total{what,result}. A change seen
// by polling that fails to load is reported once the files have stayed
// the same for one more interval, and tried again then: a writer that is
// not atomic (one file after the other, as some SPIFFE helpers write the
// certificate and then the key) would otherwise have a failure reported
// for every rotation that polling happens to catch half way.
//
// Atlas credentials from _FILE variables (credentials.go) are not polled:
// they are read again when the daemon authenticates to Atlas anew, and
// reported the same way (what "atlas_credentials") when they change or
// cannot be read.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/encryptiond/encryptiond/server/authz"
	"github.com/encryptiond/encryptiond/server/telemetry"
)

// DefaultReloadInterval is how often the TLS and policy files are checked
// for changes unless -reload-interval says otherwise.
const DefaultReloadInterval = 5 * time.Second

// What a reload replaced, as the logs' "what" and the metric's label.
const (
	whatTLS         = "tls"
	whatPolicy      = "policy"
	whatCredentials = "atlas_credentials"
)

// Why a reload happened, as the logs' "trigger".
const (
	triggerSignal         = "signal"
	triggerFileChange     = "file change"
	triggerAuthentication = "authentication"
)

// reloadReporter logs and counts reloads.
type reloadReporter struct {
	log     *slog.Logger
	metrics *telemetry.Metrics
}

// report logs and counts one reload of what: applied, with a summary of
// what is now in force and whether it differs from what was, or failed
// with err.
func (r reloadReporter) report(what, trigger, summary string, changed bool, err error) {
	r.metrics.ObserveReload(what, err)
	if err != nil {
		r.log.Error("reload failed: the previous configuration stays in force",
			slog.String("what", what), slog.String("trigger", trigger), slog.String("error", err.Error()))
		return
	}
	r.log.Info("reloaded",
		slog.String("what", what), slog.String("trigger", trigger), slog.Bool("changed", changed), slog.String("summary", summary))
}

// watchedFile is a file a reloadable reads.
type watchedFile struct {
	flag, path string // the flag names the file in errors
	limit      int64  // its largest acceptable size, in bytes
}

// fingerprint identifies what reading a reloadable's files gave: their
// contents, or the error that stopped the reading.
type fingerprint [sha256.Size]byte

// reloadable is configuration read from files that can be replaced while
// the daemon serves.
type reloadable struct {
	what  string // whatTLS, whatPolicy
	files []watchedFile
	// apply parses the files' contents, in the order of files, puts the
	// result in force and describes it in one line. On error it changes
	// nothing.
	apply func(contents [][]byte) (summary string, err error)

	// Used by one goroutine at a time: New, then the reloader's.
	inForce fingerprint // what was last applied
	seen    fingerprint // what was last applied or reported
	pending fingerprint // a change polling saw fail once, not yet reported
}

// applied records that the files read as fp were applied, and reports
// whether they differ from what was in force.
func (r *reloadable) applied(fp fingerprint) (changed bool) {
	changed = fp != r.inForce
	r.inForce = fp
	return changed
}

// read reads the files and fingerprints what it read. A file that cannot
// be read is an error, with a fingerprint of its own, so that a failure
// that lasts is told from a new one.
func (r *reloadable) read() ([][]byte, fingerprint, error) {
	h := sha256.New()
	contents := make([][]byte, 0, len(r.files))
	for _, f := range r.files {
		data, err := readFile(f.path, f.limit)
		if err != nil {
			err = fmt.Errorf("%s: %w", f.flag, err)
			io.WriteString(h, err.Error())
			return nil, fingerprint(h.Sum(nil)), err
		}
		// Length-prefixed, so that bytes moved from one file to the next
		// make another fingerprint.
		binary.Write(h, binary.BigEndian, uint64(len(data)))
		h.Write(data)
		contents = append(contents, data)
	}
	return contents, fingerprint(h.Sum(nil)), nil
}

// readFile reads the file at path, refusing one larger than limit bytes.
func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", path, err)
	case int64(len(data)) > limit:
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// reloader keeps reloadables up to date while the daemon serves.
type reloader struct {
	reloadReporter
	interval time.Duration    // between polls; 0: no polling
	signals  <-chan os.Signal // each value: reload everything; nil: never
	items    []*reloadable
}

// add loads r for the first time and keeps it up to date from then on. An
// error means the daemon cannot start.
func (rl *reloader) add(r *reloadable) error {
	contents, fp, err := r.read()
	if err == nil {
		_, err = r.apply(contents)
	}
	if err != nil {
		return err
	}
	r.inForce, r.seen = fp, fp
	rl.items = append(rl.items, r)
	rl.metrics.InitializeReloads(r.what)
	return nil
}

// run polls every interval and reloads everything on a signal, until ctx
// ends.
func (rl *reloader) run(ctx context.Context) {
	var tick <-chan time.Time
	if rl.interval > 0 && len(rl.items) > 0 {
		t := time.NewTicker(rl.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-rl.signals:
			what := make([]string, len(rl.items))
			for i, r := range rl.items {
				what[i] = r.what
			}
			rl.log.Info("reload requested", slog.String("signal", sig.String()), slog.Any("what", what))
			for _, r := range rl.items {
				rl.reload(r)
			}
		case <-tick:
			for _, r := range rl.items {
				rl.poll(r)
			}
		}
	}
}

// reload reads and applies r's files, and reports the outcome.
func (rl *reloader) reload(r *reloadable) {
	contents, fp, err := r.read()
	var summary string
	if err == nil {
		summary, err = r.apply(contents)
	}
	r.seen, r.pending = fp, fingerprint{}
	rl.report(r.what, triggerSignal, summary, err == nil && r.applied(fp), err)
}

// poll reads r's files and applies them if they changed. A change that
// fails is reported only when it is seen a second time, one interval
// later (see the comment at the top of this file).
func (rl *reloader) poll(r *reloadable) {
	contents, fp, err := r.read()
	if fp == r.seen {
		r.pending = fingerprint{}
		return
	}
	var summary string
	if err == nil {
		summary, err = r.apply(contents)
	}
	if err != nil && fp != r.pending {
		r.pending = fp
		return
	}
	r.seen, r.pending = fp, fingerprint{}
	rl.report(r.what, triggerFileChange, summary, err == nil && r.applied(fp), err)
}

// policyReloadable is the authorization policy file at path, applied to
// authorizer.
func policyReloadable(path string, authorizer *authz.Interceptor) *reloadable {
	return &reloadable{
		what:  whatPolicy,
		files: []watchedFile{{flag: "-authz-policy", path: path, limit: authz.MaxPolicySize}},
		apply: func(contents [][]byte) (string, error) {
			p, err := authz.ParsePolicy(contents[0])
			if err != nil {
				return "", fmt.Errorf("-authz-policy: %s: %w", path, err)
			}
			if err := authorizer.SetPolicy(p); err != nil {
				return "", fmt.Errorf("-authz-policy: %w", err)
			}
			return p.Summary(), nil
		},
	}
}
