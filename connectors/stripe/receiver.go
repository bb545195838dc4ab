package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v79/webhook"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// SignatureTolerance is how old a delivery's signature may be: Stripe's
// own default, which also bounds how long a captured delivery can be
// replayed.
const SignatureTolerance = 300 * time.Second

// refetchWindow: an event skipped as stale that is younger than this is
// checked against the object itself (see Receiver.ServeHTTP).
const refetchWindow = time.Minute

// Receiver accepts Stripe's webhook deliveries for one system
// (connectors.Receiver). Every ingest replica runs one.
type Receiver struct {
	sys     *config.System
	deps    connectors.ReceiverDeps
	log     *slog.Logger
	api     *client
	mapper  *mapper
	now     func() time.Time
	mu      sync.RWMutex
	secrets []string
	cli     *cliListener // the `stripe listen` process, when use_cli_listener runs one
}

// NewReceiver builds the webhook receiver of a Stripe system. Signing
// secrets come from webhook_secret (a comma-separated list while a secret
// is rotated) and, with use_cli_listener, from the Stripe CLI.
func NewReceiver(sys *config.System, deps connectors.ReceiverDeps) (connectors.Receiver, error) {
	r, err := newReceiver(sys, deps)
	if err != nil {
		return nil, err
	}
	if sys.Settings.Bool(SettingUseCLIListener) {
		r.cli = startCLIListener(sys, r, r.log)
	}
	if len(r.currentSecrets()) == 0 && r.cli == nil {
		r.log.Warn("no webhook_secret: every webhook delivery is refused; changes arrive through the Events API catch-up alone, every poll_interval")
	}
	return r, nil
}

func newReceiver(sys *config.System, deps connectors.ReceiverDeps) (*Receiver, error) {
	if deps.Publish == nil {
		return nil, errors.New("stripe receiver: no Publish function")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Receiver{sys: sys, deps: deps, log: log, now: time.Now,
		api:    newClient(apiBase(sys), sys.Settings.Secret(SettingAPIKey).Reveal(), log, nil),
		mapper: newMapper(sys.Name, sys.Receive.Locations())}
	r.secrets = splitSecrets(sys.Settings.Secret(SettingWebhookSecret).Reveal())
	return r, nil
}

func splitSecrets(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (r *Receiver) currentSecrets() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.secrets
}

// addSecret accepts deliveries signed with another secret (the one the
// Stripe CLI prints).
func (r *Receiver) addSecret(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, have := range r.secrets {
		if have == s {
			return
		}
	}
	r.secrets = append(append([]string(nil), r.secrets...), s)
}

// Close stops the CLI listener, if one runs.
func (r *Receiver) Close(ctx context.Context) error {
	if r.cli != nil {
		return r.cli.close(ctx)
	}
	return nil
}

// ServeHTTP takes one delivery. The signature is checked on the raw bytes
// before anything is parsed (400 when it is missing, bad or older than
// SignatureTolerance with every secret); the event is then published under
// its own id, so a delivery Stripe repeats publishes nothing, and ordered
// per object by its version. 200 only once Publish returned nil; 503 when
// it failed, so that Stripe delivers it again.
//
// A tie (another event of the object with the same version was published)
// and a recent event skipped as stale are settled by reading the object
// itself and publishing what it is now, so two changes within one second
// cannot leave the older one in place.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "delivery too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the delivery: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := r.verify(body, req.Header.Get("Stripe-Signature")); err != nil {
		r.log.Warn("webhook delivery refused", "reason", err, "remote", req.RemoteAddr)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e, obj, err := parseEvent(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c, ok := r.mapper.eventChange(e, obj)
	if !ok {
		writeJSON(w, map[string]any{"ignored": e.Type})
		return
	}
	ctx := req.Context()
	res, err := r.deps.Publish(ctx, e.ID, []connectors.Change{c})
	if err != nil {
		r.log.Error("publishing a webhook delivery failed; Stripe will deliver it again", "event", e.ID, "error", err)
		http.Error(w, "not stored: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	recent := r.now().Sub(time.Unix(e.createdUnix(), 0)) < refetchWindow
	if res.Tied > 0 || (res.Stale > 0 && recent) {
		more, err := r.refetch(ctx, e.ID, c)
		if err != nil {
			r.log.Error("reading an object after a tie failed; Stripe will deliver the event again", "event", e.ID, "error", err)
			http.Error(w, "not stored: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		res.Published += more.Published
	}
	writeJSON(w, res)
}

// verify checks the Stripe-Signature header against every secret.
func (r *Receiver) verify(body []byte, header string) error {
	secrets := r.currentSecrets()
	if len(secrets) == 0 {
		return errors.New("this system has no webhook_secret: deliveries cannot be checked")
	}
	var last error
	for _, s := range secrets {
		err := webhook.ValidatePayloadWithTolerance(body, header, s, SignatureTolerance)
		if err == nil {
			return nil
		}
		last = err
		if errors.Is(err, webhook.ErrNotSigned) || errors.Is(err, webhook.ErrInvalidHeader) || errors.Is(err, webhook.ErrTooOld) {
			break // the same with every secret
		}
	}
	return fmt.Errorf("signature check failed: %w", last)
}

// refetch reads the object of change c and publishes its current state
// under a delivery id of its own (a repeat of the event then reads
// nothing).
func (r *Receiver) refetch(ctx context.Context, eventID string, c connectors.Change) (connectors.DeliveryResult, error) {
	typ, id := c.Record.Location, objectID(c.Record.Fields)
	now, err := fetchChange(ctx, r.api, r.mapper, typ, id)
	if err != nil {
		return connectors.DeliveryResult{}, err
	}
	return r.deps.Publish(ctx, eventID+"/read", []connectors.Change{now})
}

// fetchChange reads an object and returns the change that sets it to what
// it is now: a delete when Stripe no longer has it.
func fetchChange(ctx context.Context, api *client, m *mapper, typ, id string) (connectors.Change, error) {
	res, err := api.call(ctx, http.MethodGet, "/v1/"+resourceOf(typ)+"/"+id, nil, "")
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.missing():
		gone := map[string]any{"id": id, "object": typ, "deleted": true}
		return m.objectChange(gone, true, readVersion(time.Now(), 0)), nil
	case err != nil:
		return connectors.Change{}, fmt.Errorf("reading %s %s: %w", typ, id, err)
	}
	deleted := res.Object["deleted"] == true
	c := m.objectChange(res.Object, deleted, readVersion(res.Date, unixField(res.Object, "updated")))
	c.CommitTime = res.Date // the state as Stripe had it when it answered
	return c, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// apiBase is the system's api_base, Stripe's own address by default.
func apiBase(sys *config.System) string {
	if b := sys.Settings.String(SettingAPIBase); b != "" {
		return b
	}
	return DefaultAPIBase
}
