package stripe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// CLIName is the Stripe CLI's command, looked up on PATH.
const CLIName = "stripe"

// maxDeliveryBytes caps what the CLI forwards, as the ingest caps what
// reaches /webhooks/{system}.
const maxDeliveryBytes = 1 << 20

// CLIProblem says why use_cli_listener cannot forward webhooks on this
// machine: nil when the setting is off or the Stripe CLI is on PATH. Without
// it the system runs on the Events API catch-up alone. `remix validate
// --online` reports it as a warning (through the source's Check), and the
// receiver logs it when it starts.
func CLIProblem(sys *config.System, lookPath func(string) (string, error)) error {
	if !sys.Settings.Bool(SettingUseCLIListener) {
		return nil
	}
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if _, err := lookPath(CLIName); err != nil {
		return fmt.Errorf("use_cli_listener is set but the Stripe CLI (%q) is not on PATH: no webhook is forwarded to %s, "+
			"which runs on the Events API catch-up alone (every poll_interval); install the Stripe CLI, or set webhook_secret "+
			"and point a webhook endpoint at /webhooks/%s", CLIName, sys.Name, sys.Name)
	}
	return nil
}

var secretLine = regexp.MustCompile(`whsec_[A-Za-z0-9]+`)

// cliListener runs `stripe listen --forward-to` for one system: the CLI
// receives the account's events over its own connection to Stripe and
// posts each to a loopback listener of this receiver, signed with a secret
// it prints at start, which the receiver then accepts.
type cliListener struct {
	log    *slog.Logger
	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// startCLIListener starts the listener, or logs why it cannot and returns
// nil.
func startCLIListener(sys *config.System, r *Receiver, log *slog.Logger) *cliListener {
	if err := CLIProblem(sys, nil); err != nil {
		log.Warn(err.Error())
		return nil
	}
	path, _ := exec.LookPath(CLIName)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Warn("use_cli_listener: cannot listen on loopback for the Stripe CLI; running on the Events API catch-up alone", "error", err)
		return nil
	}
	l := &cliListener{log: log, done: make(chan struct{}),
		srv: &http.Server{Handler: http.MaxBytesHandler(r, maxDeliveryBytes), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = l.srv.Serve(ln) }()
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	url := "http://" + ln.Addr().String() + "/"
	key := sys.Settings.Secret(SettingAPIKey).Reveal()
	go l.run(ctx, path, url, key, r)
	log.Info("forwarding webhooks with the Stripe CLI", "cli", path, "to", url)
	return l
}

// run keeps `stripe listen` running until the listener is closed,
// starting it again (after a growing pause) when it exits.
func (l *cliListener) run(ctx context.Context, path, url, key string, r *Receiver) {
	defer close(l.done)
	pause := time.Second
	for ctx.Err() == nil {
		started := time.Now()
		err := l.once(ctx, path, url, key, r)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			pause = time.Second
		}
		l.log.Warn("the Stripe CLI listener stopped; starting it again", "error", err, "in", pause)
		if connectors.Sleep(ctx, pause) != nil {
			return
		}
		pause = min(2*pause, time.Minute)
	}
}

func (l *cliListener) once(ctx context.Context, path, url, key string, r *Receiver) error {
	cmd := exec.CommandContext(ctx, path, "listen", "--forward-to", url)
	// The key goes in the environment, not the arguments, which any user
	// of the machine can list.
	cmd.Env = append(os.Environ(), "STRIPE_API_KEY="+key)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", path, err)
	}
	var wg sync.WaitGroup
	for _, out := range []io.Reader{stdout, stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if s := secretLine.FindString(sc.Text()); s != "" {
					r.addSecret(s)
					l.log.Info("the Stripe CLI is ready; its signing secret is accepted")
					continue
				}
				l.log.Debug("stripe listen", "line", sc.Text())
			}
		}()
	}
	wg.Wait()
	err = cmd.Wait()
	if err == nil {
		err = errors.New("it exited")
	}
	return err
}

func (l *cliListener) close(ctx context.Context) error {
	l.cancel()
	select {
	case <-l.done:
	case <-ctx.Done():
	}
	return l.srv.Shutdown(ctx)
}
