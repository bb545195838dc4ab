package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
)

// MaxDeliveryBytes caps the body of a delivery pushed to /webhooks/{system}.
const MaxDeliveryBytes = 1 << 20

// receiver is one system's webhook endpoint in this replica.
type receiver struct {
	svc  *Service
	sys  *config.System
	recv connectors.Receiver

	mu       sync.Mutex
	prepared bool // groups and topology made before the first publish
}

func (s *Service) addReceiver(sys *config.System, conn connectors.Connector) error {
	r := &receiver{svc: s, sys: sys}
	recv, err := conn.NewReceiver(sys, connectors.ReceiverDeps{Publish: r.publish, Logger: s.log.With("webhooks", sys.Name)})
	if err != nil {
		return err
	}
	r.recv = recv
	if s.receivers == nil {
		s.receivers = map[string]*receiver{}
	}
	s.receivers[sys.Name] = r
	return nil
}

func (s *Service) closeReceivers(ctx context.Context) {
	for _, r := range s.receivers {
		_ = r.recv.Close(ctx)
	}
}

// Webhooks is the handler of POST /webhooks/{system} for the systems this
// ingest serves whose connector receives pushed deliveries; nil when none
// does. An unknown system is 404, another method 405, a body over
// MaxDeliveryBytes 413; the rest is the system's receiver's to answer.
func (s *Service) Webhooks() http.Handler {
	if len(s.receivers) == 0 {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/webhooks/{system}", func(w http.ResponseWriter, req *http.Request) {
		r := s.receivers[req.PathValue("system")]
		if r == nil {
			http.Error(w, "no system by that name receives webhooks here", http.StatusNotFound)
			return
		}
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "deliveries are POSTed", http.StatusMethodNotAllowed)
			return
		}
		if req.ContentLength > MaxDeliveryBytes {
			http.Error(w, fmt.Sprintf("a delivery is at most %d bytes", MaxDeliveryBytes), http.StatusRequestEntityTooLarge)
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, MaxDeliveryBytes)
		r.recv.ServeHTTP(w, req)
	})
	return mux
}

// WebhookSystems lists the systems whose deliveries this ingest accepts.
func (s *Service) WebhookSystems() []string {
	out := make([]string, 0, len(s.receivers))
	for name := range s.receivers {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// publish maps a delivery's changes through the receive mixer and
// publishes the objects in one atomic step, deduplicated by the delivery
// id and ordered per object by the changes' versions.
func (r *receiver) publish(ctx context.Context, id string, changes []connectors.Change) (connectors.DeliveryResult, error) {
	m := newMapper(r.svc.cfg.Config, r.sys)
	if err := r.prepare(ctx, m); err != nil {
		return connectors.DeliveryResult{}, err
	}
	items := m.items(connectors.Batch{Changes: changes})
	res, err := r.svc.cfg.Coord.PublishDelivery(ctx, r.sys.Name, id, items)
	if err != nil {
		if errors.Is(err, coord.ErrDeadLettersFull) {
			return connectors.DeliveryResult{}, fmt.Errorf("the dead-letter queue of %s is full: %w", r.sys.Name, err)
		}
		return connectors.DeliveryResult{}, err
	}
	if mt := r.svc.cfg.Metrics; mt != nil && !res.Repeat {
		mt.IngestChanges.WithLabelValues(r.sys.Name).Add(float64(len(changes)))
		mt.IngestDeadLettered.WithLabelValues(r.sys.Name).Add(float64(res.DeadLettered + res.Diverted))
	}
	if res.DeadLettered > 0 {
		r.svc.log.Warn("records dead-lettered", "source", r.sys.Name, "delivery", id, "count", res.DeadLettered, "reason", firstBad(items))
	}
	return connectors.DeliveryResult{Repeat: res.Repeat, Published: res.Published, Stale: res.Stale, Tied: res.Tied,
		Bad: res.DeadLettered + res.Diverted}, nil
}

// prepare records the topology and creates the targets' groups of the
// system's models, as a leading ingest does before it publishes: once, and
// again after a failure.
func (r *receiver) prepare(ctx context.Context, m *mapper) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.prepared {
		return nil
	}
	c := r.svc.cfg.Coord
	if err := c.EnsureTopology(ctx, m.models()); err != nil {
		return err
	}
	for model, targets := range m.targets {
		if err := c.EnsureGroups(ctx, model, targets); err != nil {
			return err
		}
	}
	r.prepared = true
	return nil
}
