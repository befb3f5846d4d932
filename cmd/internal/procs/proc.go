package procs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Default values of the Harness fields left zero.
const (
	DefaultReady     = 30 * time.Second
	DefaultStopGrace = 20 * time.Second
)

// Harness starts the children of one driver run.
type Harness struct {
	// Bin is the directory holding the binaries the harness starts
	// (encryptiond, atlas-emulator, and any other a driver Starts).
	// Required.
	Bin string
	// Dir is the directory that receives each child's output, as
	// Dir/<name>.log (<name>-2.log and on for later children of the same
	// name, such as a restarted daemon). Required; the caller creates and
	// removes it.
	Dir string
	// Ready bounds how long a child may take to announce that it is
	// serving. Zero means DefaultReady (30 s).
	Ready time.Duration
	// StopGrace is how long Proc.Stop waits after SIGTERM before it kills
	// the child. Zero means DefaultStopGrace (20 s).
	StopGrace time.Duration
	// DaemonEnv is added to the environment of every daemon StartDaemon
	// starts (NAME=value), for instance GOGC.
	DaemonEnv []string
}

func (h Harness) ready() time.Duration {
	if h.Ready > 0 {
		return h.Ready
	}
	return DefaultReady
}

// Proc is a child process whose stdout and stderr go to a log file. It may
// be restarted (Restart): each run of the binary is an incarnation with a
// log of its own, and the methods speak of the current one unless they say
// otherwise. A Proc is safe for concurrent use.
type Proc struct {
	name, bin string
	env       []string // the whole environment of every incarnation
	dir       string
	ready     time.Duration
	grace     time.Duration

	mu   sync.Mutex
	cur  *child
	logs []string // every incarnation's log, oldest first
}

// child is one incarnation of a Proc.
type child struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // the exit error, once done is closed
}

// start starts bin with args, and env added to a minimal environment
// (PATH and HOME), writing its output to a new log in h.Dir (see Dir).
func (h Harness) start(name, bin string, args, env []string) (*Proc, error) {
	grace := h.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	p := &Proc{
		name: name, bin: bin, dir: h.Dir, ready: h.ready(), grace: grace,
		env: append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...),
	}
	if err := p.spawn(args); err != nil {
		return nil, err
	}
	return p, nil
}

// spawn starts a new incarnation with args and makes it the current one.
func (p *Proc) spawn(args []string) error {
	f, logPath, err := createLog(p.dir, p.name)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = p.env
	// If the driver dies without cleaning up, the kernel stops the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	c := &child{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	p.mu.Lock()
	p.cur = c
	p.logs = append(p.logs, logPath)
	p.mu.Unlock()
	return nil
}

func (p *Proc) current() *child {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// createLog creates dir/name.log, or name-2.log, name-3.log … when a
// child of that name has one already: two children writing one file would
// mix their output, and a restart would truncate the first one's.
func createLog(dir, name string) (*os.File, string, error) {
	for i := 1; ; i++ {
		path := filepath.Join(dir, name+".log")
		if i > 1 {
			path = filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, i))
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			return f, path, err
		}
	}
}

// PID is the current incarnation's process id.
func (p *Proc) PID() int { return p.current().cmd.Process.Pid }

// LogPath is the file that holds the current incarnation's stdout and
// stderr.
func (p *Proc) LogPath() string { return p.current().log }

// LogPaths lists the logs of every incarnation, oldest first.
func (p *Proc) LogPaths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.logs)
}

// Err is the current incarnation's exit error (nil for a clean exit) once
// it has exited, as it has when Stop returns; nil while it runs.
func (p *Proc) Err() error {
	c := p.current()
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// ErrorRecords counts the JSON log records at level ERROR in the output of
// every incarnation (the daemon logs a recovered panic or a failed
// listener so): a run with any is suspect whatever its numbers.
func (p *Proc) ErrorRecords() (int, error) {
	n := 0
	err := ScanLines(p.LogPaths(), func(line []byte) {
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Level == "ERROR" {
			n++
		}
	})
	return n, err
}

// ScanLines calls f with each line of the files at paths, in order: the
// output of a process's incarnations, a JSON log record a line (lines up
// to 1 MiB). Its errors name the file.
func ScanLines(paths []string, f func(line []byte)) error {
	for _, path := range paths {
		file, err := os.Open(path)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			f(sc.Bytes())
		}
		err = sc.Err()
		file.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// Stop sends the current incarnation SIGTERM, waits up to the harness's
// StopGrace, then kills it. It returns once the child has exited and may
// be called again.
func (p *Proc) Stop() {
	c := p.current()
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(p.grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// restartAttempts bounds how often Restart starts a child that exits
// before it is ready.
const restartAttempts = 3

// Restart stops the child as Stop does, if it still runs, and runs its
// binary again with args (which may differ from the first run's: a fixed
// address instead of port 0) and the same environment, as a new
// incarnation with a new log. It waits up to the harness's Ready for
// ready to accept a line of the new output and returns what ready
// returned, as Harness.Start does. A child restarted on a fixed address
// can lose its port for a moment to another socket, so one that exits
// before it is ready is started again, up to three attempts half a second
// apart; the error then quotes the last one's output.
func (p *Proc) Restart(ctx context.Context, args []string, ready func(line string) (string, bool)) (string, error) {
	p.Stop()
	var err error
	for attempt := range restartAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		if err = p.spawn(args); err != nil {
			return "", err
		}
		var v string
		if v, err = p.waitLog(ctx, p.ready, ready); err == nil {
			return v, nil
		}
		p.Stop()
		if ctx.Err() != nil || !errors.As(err, new(*earlyExit)) {
			break
		}
	}
	return "", err
}

// earlyExit is waitLog's error for a child that exited before it was
// ready.
type earlyExit struct{ text string }

func (e *earlyExit) Error() string { return e.text }

// waitLog polls the child's log every 50 ms until match accepts a line,
// and returns what match returned for it; or fails when the child exits,
// ctx ends or timeout passes.
func (p *Proc) waitLog(ctx context.Context, timeout time.Duration, match func(line string) (string, bool)) (string, error) {
	c := p.current()
	deadline := time.Now().Add(timeout)
	for {
		if v, ok := scanLog(c.log, match); ok {
			return v, nil
		}
		select {
		case <-c.done:
			return "", &earlyExit{fmt.Sprintf("%s exited (%v) before it was ready; the end of %s:\n%s", p.name, c.err, c.log, tail(c.log, 4096))}
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not ready after %v; see %s", p.name, timeout, c.log)
		}
	}
}

func scanLog(path string, match func(string) (string, bool)) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := match(sc.Text()); ok {
			return v, true
		}
	}
	return "", false
}

// tail returns the last n bytes of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b[max(len(b)-n, 0):])
}

// Start starts Bin/name with args, and env added to a minimal environment,
// and waits up to Ready for ready to accept a line of its output; it
// returns the child and what ready returned. StartEmulator and StartDaemon
// use it, and a driver can start a helper of its own with it; the caller
// stops the child with Proc.Stop.
func (h Harness) Start(ctx context.Context, name string, args, env []string, ready func(line string) (string, bool)) (*Proc, string, error) {
	p, err := h.start(name, filepath.Join(h.Bin, name), args, env)
	if err != nil {
		return nil, "", err
	}
	v, err := p.waitLog(ctx, p.ready, ready)
	if err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, v, nil
}
