// Command waitron serves a built-in application with waitron, taking every
// supported waitress option as a --kebab-case flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/waitron/waitron/internal/arena"
	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/fastadapter"
	"github.com/waitron/waitron/internal/gcfloor"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/limits"
	_ "github.com/waitron/waitron/metrics" // metrics_listen
)

func main() {
	sig := make(chan os.Signal, 2)
	signalNotify(sig)
	stop := startProfile(os.Getenv("WAITRON_CPUPROFILE"), os.Stderr)
	stopTrace := startTrace(os.Getenv("WAITRON_TRACE"), os.Stderr)
	code := run(os.Args[1:], os.Stdout, os.Stderr, sig, nil)
	stopTrace()
	stop()
	writeAllocProfile(os.Getenv("WAITRON_MEMPROFILE"), os.Stderr)
	os.Exit(code)
}

// startProfile writes a CPU profile of the whole run to path (the
// WAITRON_CPUPROFILE environment variable) when it is set, for
// `go tool pprof`. The returned function ends it.
func startProfile(path string, stderr io.Writer) func() {
	return startRecording("WAITRON_CPUPROFILE", path, stderr, pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// startTrace writes an execution trace of the whole run to path (the
// WAITRON_TRACE environment variable) when it is set, for `go tool
// trace`: where goroutines wait to run, block, and sit in system calls.
func startTrace(path string, stderr io.Writer) func() {
	return startRecording("WAITRON_TRACE", path, stderr, trace.Start, trace.Stop)
}

// startRecording starts start writing to a new file at path (nothing when
// path is empty; exit 2 when it cannot) and returns what ends it.
func startRecording(env, path string, stderr io.Writer, start func(io.Writer) error, stop func()) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = start(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "waitron: %s: %v\n", env, err)
		os.Exit(2)
	}
	return func() {
		stop()
		f.Close()
	}
}

// writeAllocProfile writes the allocations of the whole run (sampled, as
// `go tool pprof -sample_index=alloc_space` reads them) to path (the
// WAITRON_MEMPROFILE environment variable) when it is set.
func writeAllocProfile(path string, stderr io.Writer) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "waitron: WAITRON_MEMPROFILE: %v\n", err)
	}
}

// signalNotify delivers SIGINT, SIGTERM and SIGHUP to sig.
func signalNotify(sig chan<- os.Signal) {
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
}

const usageLine = "usage: waitron [--app NAME] [options]   (waitron --help lists every option)"

// apps are the built-in applications --app can choose: each makes its
// server, through the net/http adapter or the fasthttp one.
var apps = map[string]func(limits.Options, command, *slog.Logger) (*engine.Server, error){
	"target": func(o limits.Options, c command, log *slog.Logger) (*engine.Server, error) {
		return engine.New(targetapp.NewWith(c.caps), o, log)
	},
	"target-fasthttp": func(o limits.Options, c command, log *slog.Logger) (*engine.Server, error) {
		return engine.NewFor(fastadapter.Adapter(targetapp.NewFastWith(c.caps)), o, log)
	},
	"arena": func(o limits.Options, c command, log *slog.Logger) (*engine.Server, error) {
		h, err := arena.New(c.arena)
		if err != nil {
			return nil, err
		}
		return engine.New(h, o, log)
	},
	"arena-fasthttp": func(o limits.Options, c command, log *slog.Logger) (*engine.Server, error) {
		h, err := arena.NewFast(c.arena)
		if err != nil {
			return nil, err
		}
		return engine.NewFor(fastadapter.Adapter(h), o, log)
	},
}

// run is the whole command: it parses args, serves until the first signal
// on sig, then shuts down gracefully; a second signal forces the exit.
// started, when not nil, receives the server once it listens (for tests).
// It returns the process exit code.
func run(args []string, stdout, stderr io.Writer, sig <-chan os.Signal, started chan<- *engine.Server) int {
	opts, cmd, help, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "waitron: %s\n%s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "), usageLine)
		return 2
	}
	if help != nil {
		printHelp(stdout, help)
		return 0
	}
	if cmd.version {
		fmt.Fprintln(stdout, version())
		return 0
	}
	newApp := apps[cmd.app]
	hopts := &slog.HandlerOptions{Level: cmd.logLevel}
	var log *slog.Logger
	if cmd.logJSON {
		log = slog.New(slog.NewJSONHandler(stderr, hopts))
	} else {
		log = slog.New(slog.NewTextHandler(stderr, hopts))
	}
	if cmd.gcFloor > 0 {
		f := gcfloor.Start(cmd.gcFloor)
		defer f.Stop()
	} else if cmd.gcEnv != "" {
		log.Info("--gc-floor not applied: the environment sets the collector", "env", cmd.gcEnv)
	}
	srv, err := newApp(opts, cmd, log)
	if err != nil {
		fmt.Fprintf(stderr, "waitron: %v\n", err)
		return 1
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	select {
	case <-srv.Ready():
		if err := srv.ReadyErr(); err != nil {
			fmt.Fprintf(stderr, "waitron: %v\n", <-served)
			return 1
		}
	case err := <-served:
		fmt.Fprintf(stderr, "waitron: %v\n", err)
		return 1
	}
	if started != nil {
		started <- srv
	}
	var first os.Signal
	for first == nil {
		select {
		case err := <-served:
			log.Error("server stopped", "err", err)
			return 1
		case s := <-sig:
			if s == syscall.SIGHUP {
				// logrotate moved the access log away: write to a new one;
				// and a renewed certificate is read (ReloadTLS logs).
				if err := srv.ReopenAccessLog(); err != nil {
					log.Error("cannot reopen the access log", "err", err)
				} else {
					log.Info("access log reopened", "signal", s.String())
				}
				_ = srv.ReloadTLS()
				continue
			}
			first = s
		}
	}
	log.Info("shutting down: finishing requests in flight (send the signal again to force)", "signal", first.String(),
		"shutdown_timeout", cmd.shutdownTimeout.String())
	ctx, cancel := context.WithCancel(context.Background())
	if cmd.shutdownTimeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), cmd.shutdownTimeout)
	}
	go func() {
		for {
			select {
			case s := <-sig:
				if s == syscall.SIGHUP {
					continue
				}
				log.Warn("second signal: forcing shutdown")
				cancel()
			case <-ctx.Done():
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					log.Warn("shutdown_timeout passed: closing the connections left")
				}
			}
			return
		}
	}()
	err = srv.Shutdown(ctx)
	cancel()
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// newFlagSet registers one flag per option of the table, plus --no-NAME for
// booleans, so the command line cannot drift from the options.
func newFlagSet(opts *limits.Options) (*pflag.FlagSet, *string) {
	fs := pflag.NewFlagSet("waitron", pflag.ContinueOnError)
	fs.SortFlags = false
	app := fs.String("app", "target", "built-in application to serve: "+strings.Join(appNames(), ", "))
	for _, opt := range limits.Table() {
		name := strings.TrimPrefix(opt.Flag(), "--")
		usage := opt.Doc
		if opt.Unit != "" {
			usage += " (" + opt.Unit + ")"
		}
		f := fs.VarPF(&optValue{opts: opts, flag: opt.Flag(), kind: opt.Kind}, name, "", usage)
		f.DefValue = opt.Default
		if opt.Kind == limits.Bool {
			f.NoOptDefVal = "true"
			nf := fs.VarPF(&optValue{opts: opts, flag: opt.Flag(), kind: opt.Kind, negate: true}, "no-"+name, "", "turn "+opt.Flag()+" off")
			nf.NoOptDefVal = "true"
		}
	}
	return fs, app
}

// command is what the command line sets besides the options.
type command struct {
	app             string
	gcFloor         uint64 // 0: Go's collector settings are left alone
	gcEnv           string // GOGC=… or GOMEMLIMIT=… when the environment sets them
	version         bool
	logLevel        slog.Level
	logJSON         bool
	shutdownTimeout time.Duration  // 0: wait for every request in flight
	caps            targetapp.Caps // what one request may ask of the target apps
	arena           arena.Config   // the arena apps' data
}

// version describes the build: the module's version (or "(devel)"), the
// source revision it was built from, and the Go release.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "waitron (no build information) " + runtime.Version()
	}
	v := "waitron " + bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev != "" {
		v += " (" + rev[:min(12, len(rev))] + modified + ")"
	}
	return v + " " + bi.GoVersion
}

// defaultGCFloor is --gc-floor's default: 16 MiB (see internal/gcfloor).
const defaultGCFloor = 16 << 20

// parseArgs turns the command line (and the config file it names) into
// options. It returns the flag set when --help was asked for.
func parseArgs(args []string) (limits.Options, command, *pflag.FlagSet, error) {
	opts := limits.Default()
	var cmd command
	fs, app := newFlagSet(&opts)
	config := fs.String("config", "", "read options from the [server:main] section of this PasteDeploy-style .ini file; flags override it")
	gcFloor := fs.Int("gc-floor", defaultGCFloor, "While the live heap is under half of this, Go collects only when the heap reaches it (Go's own floor is 4 MiB), so a busy server with little live data collects far less often. 0 leaves the collector alone, as does GOGC or GOMEMLIMIT in the environment. (bytes)")
	logLevel := fs.String("log-level", "info", "the error log's level: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "the error log's format: text (logfmt) or json")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long a graceful shutdown waits for requests in flight before it closes the connections left; 0 waits for all (a Go duration: 30s, 2m)")
	fs.SetOutput(io.Discard)
	maxDelay := fs.Duration("target-max-delay", targetapp.DefaultCaps.MaxDelay, "the longest /delay/{ms} the built-in app answers; longer is a 400 (a Go duration: 10s, 1m)")
	maxBytes := fs.Int64("target-max-bytes", targetapp.DefaultCaps.MaxBytes, "the largest response /bytes/{n} and /stream/{n} of the built-in app make; larger is a 400 (bytes)")
	dataDir := fs.String("data-dir", "", "the arena apps' data directory: dataset.json and static/ (default: $DATA_DIR, else "+arena.DefaultDir+")")
	precompressed := fs.Bool("arena-precompressed", false, "the arena apps serve a static file's .br or .gz sibling to clients that accept it")
	showVersion := fs.Bool("version", false, "print the version and exit")
	help := fs.BoolP("help", "h", false, "show this help and exit")
	if err := fs.Parse(args); err != nil {
		return opts, cmd, nil, err
	}
	if *help {
		return opts, cmd, fs, nil
	}
	if *showVersion {
		cmd.version = true
		return opts, cmd, nil, nil
	}
	if fs.NArg() > 0 {
		return opts, cmd, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// Defaults, then the ini file, then the environment, then the flags.
	base := limits.Default()
	if *config != "" {
		if err := base.LoadConfig(*config); err != nil {
			return opts, cmd, nil, err
		}
	}
	if err := setFromEnv(&base); err != nil {
		return opts, cmd, nil, err
	}
	if err := base.Override(&opts); err != nil {
		return opts, cmd, nil, err
	}
	opts = base
	if err := cmd.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return opts, cmd, nil, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", *logLevel)
	}
	switch *logFormat {
	case "text":
	case "json":
		cmd.logJSON = true
	default:
		return opts, cmd, nil, fmt.Errorf("--log-format must be text or json, not %q", *logFormat)
	}
	if *shutdownTimeout < 0 {
		return opts, cmd, nil, fmt.Errorf("--shutdown-timeout must be 0 or more, not %s", *shutdownTimeout)
	}
	cmd.shutdownTimeout = *shutdownTimeout
	if _, ok := apps[*app]; !ok {
		return opts, cmd, nil, fmt.Errorf("unknown app %q (built in: %s)", *app, strings.Join(appNames(), ", "))
	}
	cmd.app = *app
	if *maxDelay < 0 || *maxBytes < 0 {
		return opts, cmd, nil, fmt.Errorf("--target-max-delay and --target-max-bytes must be 0 or more, not %s and %d", *maxDelay, *maxBytes)
	}
	cmd.caps = targetapp.Caps{MaxDelay: *maxDelay, MaxBytes: *maxBytes}
	cmd.arena = arena.Config{Dir: *dataDir, Precompressed: *precompressed}
	if cmd.arena.Dir == "" {
		cmd.arena.Dir = arena.DirFromEnv()
	}
	// An app's own flags given to another app are an error, not ignored.
	isArena := strings.HasPrefix(cmd.app, "arena")
	for _, f := range []struct {
		name  string
		arena bool
	}{{"target-max-delay", false}, {"target-max-bytes", false}, {"data-dir", true}, {"arena-precompressed", true}} {
		if fs.Changed(f.name) && f.arena != isArena {
			return opts, cmd, nil, fmt.Errorf("--%s does not apply to --app %s", f.name, cmd.app)
		}
	}
	var gcErr error
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if v := os.Getenv(k); v != "" && cmd.gcEnv == "" {
			cmd.gcEnv = k + "=" + v
		}
	}
	switch {
	case *gcFloor < 0:
		gcErr = fmt.Errorf("--gc-floor must be 0 or more bytes, not %d", *gcFloor)
	case cmd.gcEnv == "":
		cmd.gcFloor = uint64(*gcFloor)
	case fs.Changed("gc-floor") && *gcFloor > 0:
		gcErr = fmt.Errorf("--gc-floor conflicts with %s in the environment: unset it, or give --gc-floor 0", cmd.gcEnv)
	}
	// Every problem at once, the options' and --gc-floor's.
	if err := opts.Validate(); err != nil {
		return opts, cmd, nil, errors.Join(fmt.Errorf("invalid options:\n%w", err), gcErr)
	}
	if gcErr != nil {
		return opts, cmd, nil, gcErr
	}
	return opts, cmd, nil, nil
}

// setFromEnv sets every option whose WAITRON_<NAME> environment variable
// is set (a list option's value replaces the file's, as a flag adds to
// nothing given before it). An error names the variable.
func setFromEnv(o *limits.Options) error {
	for _, opt := range limits.Table() {
		v, ok := os.LookupEnv(opt.Env())
		if !ok {
			continue
		}
		if opt.Kind == limits.List {
			if err := o.Reset(opt.Name); err != nil {
				return err
			}
		}
		if err := o.Set(opt.Env(), v); err != nil {
			return err
		}
	}
	return nil
}

// optValue is a pflag.Value that parses through the option table.
type optValue struct {
	opts   *limits.Options
	flag   string // the option's flag, --kebab-case
	kind   limits.Kind
	negate bool
}

func (v *optValue) String() string { return "" }
func (v *optValue) Type() string {
	switch v.kind {
	case limits.Int:
		return "int"
	case limits.Bool:
		return ""
	case limits.List:
		return "list"
	case limits.Duration:
		return "seconds" // or a Go duration such as 1m30s
	case limits.Octal:
		return "mode"
	}
	return "string"
}

func (v *optValue) Set(s string) error {
	if v.negate {
		b, err := limits.ParseBool(s)
		if err != nil {
			return err
		}
		s = fmt.Sprint(!b)
	}
	return v.opts.Set(v.flag, s) // as the user spelled it, for the errors
}

func printHelp(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "waitron serves a built-in net/http application with waitress's serving model.\n\n%s\n\nOptions (defaults in brackets; an option is taken from its flag, else its environment variable, else\nthe --config file, else its default):\n", usageLine)
	fs.VisitAll(func(f *pflag.Flag) {
		if strings.HasPrefix(f.Name, "no-") {
			return
		}
		name := "--" + f.Name
		if f.Value.Type() != "" && f.Value.Type() != "bool" {
			name += " " + strings.ToUpper(f.Value.Type())
		}
		if f.NoOptDefVal == "true" && f.Name != "help" {
			name = "--[no-]" + f.Name
		}
		def := ""
		switch {
		case f.Name == "help" || f.Name == "config":
		case f.DefValue == "":
			def = ` [""]`
		default:
			def = " [" + f.DefValue + "]"
		}
		env := ""
		if opt, ok := limits.Lookup(f.Name); ok {
			env = " (env " + opt.Env() + ")"
		}
		fmt.Fprintf(w, "  %s%s%s\n      %s\n", name, def, env, f.Usage)
	})
}

func appNames() []string {
	var names []string
	for n := range apps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
