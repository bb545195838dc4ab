package stripe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// DefaultProductWait is how long a price whose product has no Stripe id yet
// is retried before it is set aside (see Sink).
const DefaultProductWait = 2 * time.Minute

// Sink writes target records to Stripe's API, one call per record in the
// common case (connectors.Coster says how many).
//
// An upsert whose search key has no value creates the object (POST
// /v1/{resource}); the id Stripe assigns comes back to the other systems
// through the object's *.created event and the normal receive path. An
// upsert with a key updates it (POST /v1/{resource}/{id}); Stripe assigns
// ids, so a key naming no object is refused (dead letter with Stripe's
// message). A delete archives prices (active=false: Stripe deletes no
// price), deletes products and archives those Stripe refuses to delete
// (those with prices), and deletes anything else. Prices are immutable in
// amount, currency, product and recurrence: see updatePrice and
// updateProductPrice.
//
// Every call carries an idempotency key made from the record's version
// (idempotencyKey), so a record written again after a crash creates
// nothing twice; calls already answered in this process are not sent again.
type Sink struct {
	sys  *config.System
	api  *client
	log  *slog.Logger
	wait time.Duration

	mu      sync.Mutex
	done    map[string]*response // answers by idempotency key, for a write tried again
	waiting map[string]time.Time // prices waiting for their product, since
}

// NewSink builds the sink of a Stripe system (connectors.Connector).
func NewSink(sys *config.System, deps connectors.SinkDeps) (connectors.Sink, error) {
	return newSink(sys, deps, nil), nil
}

func newSink(sys *config.System, deps connectors.SinkDeps, hc *http.Client) *Sink {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Sink{sys: sys, log: log, wait: DefaultProductWait,
		api:  newClient(apiBase(sys), sys.Settings.Secret(SettingAPIKey).Reveal(), log, hc),
		done: map[string]*response{}, waiting: map[string]time.Time{}}
	s.api.limiter = deps.Limiter
	return s
}

// PacesCalls says the sink charges the shared rate limit call by call
// (connectors.SelfPacing): a write of many records reaches Stripe at the
// limit's pace, not in one burst.
func (s *Sink) PacesCalls() bool { return s.api.limiter != nil }

// Open checks the push mixer: an object is found by its id, so every search
// key must be written to id.
func (s *Sink) Open(ctx context.Context) error {
	if s.sys.Settings.Secret(SettingAPIKey).IsZero() {
		return errors.New("stripe: api_key is empty")
	}
	for _, model := range s.sys.Push.Models() {
		for _, rule := range s.sys.Push.Rules(model) {
			for _, k := range rule.SearchKeys() {
				if k.Target.String() != "id" {
					return fmt.Errorf("stripe: push_mixer %s %s: search key %s is written to %s; Stripe finds an object by its id only, so a search key must have field: id",
						model, rule.Location(), k.Field, k.Target)
				}
			}
		}
	}
	return nil
}

// Close has nothing to release.
func (s *Sink) Close(context.Context) error { return nil }

// WriteCost is the number of calls Write makes for records
// (connectors.Coster): exact for creates, plain updates and archives; for
// what depends on Stripe's answer (a price update that reads the price and
// may replace it, a product delete Stripe may refuse) the most it can make,
// so the shared rate limit is never exceeded.
func (s *Sink) WriteCost(records []mixer.TargetRecord) int {
	n := 0
	for i := range records {
		n += recordCost(&records[i])
	}
	return n
}

func recordCost(rec *mixer.TargetRecord) int {
	switch rec.Op {
	case mixer.OpDelete:
		if rec.Location == "products" {
			return 2 // delete, and archive when refused
		}
		return 1
	case mixer.OpUpsert:
		if rec.Key == nil {
			return 1
		}
		params, err := FormValues(rec.Fields)
		if err != nil {
			return 0
		}
		delete(params, rec.Key.Target.FormKey())
		switch {
		case rec.Location == "prices" && hasImmutable(params):
			return 4 // read; create, default_price, archive
		case rec.Location == "products" && hasDefaultPrice(params):
			return 4 // read; create a price, update, archive the old one
		case len(params) == 0:
			return 0
		}
		return 1
	}
	return 0
}

// Write applies records in order. A record Stripe refuses is a
// *connectors.RecordError wrapping ErrPermanent, with Stripe's message; an
// outage is ErrUnavailable. Records before a failed one were applied: when
// the pusher writes them again their calls are answered from this
// process's memory, or by Stripe from the same idempotency keys.
func (s *Sink) Write(ctx context.Context, records []mixer.TargetRecord, _ []connectors.Fence) error {
	for i := range records {
		rec := &records[i]
		err := s.apply(ctx, rec)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var w *waitError
		if errors.As(err, &w) {
			return &connectors.RecordError{Index: i, Err: err}
		}
		err = classify(err)
		if errors.Is(err, connectors.ErrPermanent) {
			return &connectors.RecordError{Index: i, Err: fmt.Errorf("%s %s: %w", rec.Op, rec.Location, err)}
		}
		return fmt.Errorf("record %d (%s %s): %w", i, rec.Op, rec.Location, err)
	}
	return nil
}

func (s *Sink) apply(ctx context.Context, rec *mixer.TargetRecord) error {
	switch rec.Op {
	case mixer.OpUpsert:
		params, err := FormValues(rec.Fields)
		if err != nil {
			return fmt.Errorf("%w: %w", connectors.ErrPermanent, err)
		}
		if rec.Key == nil {
			return s.create(ctx, rec, params)
		}
		id, err := FormText(rec.Key.Value)
		if err != nil || id == "" {
			return fmt.Errorf("%w: the search key %s has no usable value", connectors.ErrPermanent, rec.Key.Field)
		}
		delete(params, rec.Key.Target.FormKey())
		switch {
		case rec.Location == "prices" && hasImmutable(params):
			return s.updatePrice(ctx, rec, id, params)
		case rec.Location == "products" && hasDefaultPrice(params):
			return s.updateProductPrice(ctx, rec, id, params)
		case len(params) == 0:
			return nil // nothing to write but the key
		}
		dropDefaultPriceData(params)
		_, err = s.post(ctx, rec, "update", objectPath(rec.Location, id), params)
		return err
	case mixer.OpDelete:
		if rec.Key == nil {
			return fmt.Errorf("%w: a delete needs the object's id", connectors.ErrPermanent)
		}
		id, err := FormText(rec.Key.Value)
		if err != nil || id == "" {
			return fmt.Errorf("%w: the search key %s has no usable value", connectors.ErrPermanent, rec.Key.Field)
		}
		return s.remove(ctx, rec, id)
	}
	// A truncate: Stripe has no such thing, and archiving every object
	// of an account because a table was emptied would surprise. Logged
	// and passed (an error would stop the partition for good).
	s.log.Warn("a truncate is not applied to Stripe: delete the rows to archive their objects", "location", rec.Location)
	return nil
}

// create makes a new object. A null on create is no value: left out.
func (s *Sink) create(ctx context.Context, rec *mixer.TargetRecord, params url.Values) error {
	for k, v := range params {
		if len(v) == 1 && v[0] == "" {
			delete(params, k)
		}
	}
	if rec.Location == "products" && !hasDefaultPrice(params) {
		dropDefaultPriceData(params)
	}
	if rec.Location == "prices" && params.Get("product") == "" && !hasPrefix(params, "product_data[") {
		return s.waitForProduct(rec, params)
	}
	_, err := s.post(ctx, rec, "create", "/v1/"+rec.Location, params)
	return err
}

// remove deletes or archives the object id.
func (s *Sink) remove(ctx context.Context, rec *mixer.TargetRecord, id string) error {
	archive := func() error {
		_, err := s.post(ctx, rec, "archive", objectPath(rec.Location, id), url.Values{"active": {"false"}})
		return ignoreMissing(err)
	}
	if rec.Location == "prices" {
		return archive()
	}
	_, err := s.send(ctx, rec, http.MethodDelete, "delete", objectPath(rec.Location, id), nil)
	var ae *APIError
	switch {
	case err == nil, errors.As(err, &ae) && ae.missing():
		return nil // gone, or never there
	case rec.Location == "products" && errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		s.log.Debug("stripe refused to delete a product; archiving it", "id", id, "reason", ae.Message)
		return archive()
	}
	return err
}

// post sends a POST for one step of a record's write.
func (s *Sink) post(ctx context.Context, rec *mixer.TargetRecord, step, path string, params url.Values) (*response, error) {
	return s.send(ctx, rec, http.MethodPost, step, path, params)
}

// send makes one write call with its idempotency key, unless this process
// already has its answer.
func (s *Sink) send(ctx context.Context, rec *mixer.TargetRecord, method, step, path string, params url.Values) (*response, error) {
	key := idempotencyKey(rec, step, params)
	s.mu.Lock()
	res, ok := s.done[key]
	s.mu.Unlock()
	if ok {
		return res, nil
	}
	res, err := s.api.call(ctx, method, path, params, key)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.done) >= 10000 { // a retry comes right after its failure: forget the rest
		clear(s.done)
	}
	s.done[key] = res
	s.mu.Unlock()
	return res, nil
}

// get reads an object (no idempotency key: reads change nothing).
func (s *Sink) get(ctx context.Context, path string, params url.Values) (*response, error) {
	return s.api.call(ctx, http.MethodGet, path, params, "")
}

// waitError is a price that cannot be created yet: it names no product
// with a Stripe id. The pusher retries it (it is not classified), holding
// its partition; the product's id reaches the price's row through the
// product's created event, and the row's next version is what Stripe gets.
// Past the sink's wait it becomes permanent: the record is set aside in
// the dead-letter queue, where the row's next complete version supersedes
// it, instead of holding that version back behind it for good.
type waitError struct{ msg string }

func (e *waitError) Error() string { return e.msg }

func (s *Sink) waitForProduct(rec *mixer.TargetRecord, params url.Values) error {
	key := idempotencyKey(rec, "create", params)
	s.mu.Lock()
	since, ok := s.waiting[key]
	if !ok {
		since = time.Now()
		s.waiting[key] = since
	}
	s.mu.Unlock()
	msg := "the price names no product with a Stripe id yet (its product field is empty)"
	if time.Since(since) >= s.wait {
		s.mu.Lock()
		delete(s.waiting, key)
		s.mu.Unlock()
		return fmt.Errorf("%w: %s after waiting %v: set the product's id on the price (a newer version of the price replaces this dead letter)",
			connectors.ErrPermanent, msg, s.wait)
	}
	return &waitError{msg: msg + "; waiting for it"}
}

func objectPath(resource, id string) string { return "/v1/" + resource + "/" + url.PathEscape(id) }

func ignoreMissing(err error) error {
	var ae *APIError
	if errors.As(err, &ae) && ae.missing() {
		return nil
	}
	return err
}

func hasPrefix(params url.Values, prefix string) bool {
	for k := range params {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
