package stripefake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v79/webhook"
)

// record appends an event for a change of obj, caused by request q, and
// queues it for every endpoint.
func (f *Fake) record(typ string, obj map[string]any, previous map[string]any, q req) {
	request := map[string]any{"id": nil, "idempotency_key": nil}
	if q.id != "" {
		request["id"] = q.id
	}
	if q.key != "" {
		request["idempotency_key"] = q.key
	}
	data := map[string]any{"object": clone(obj)}
	if len(previous) > 0 {
		data["previous_attributes"] = previous
	}
	e := map[string]any{"id": f.nextID("evt"), "object": "event", "api_version": APIVersion, "created": f.now().Unix(),
		"data": data, "livemode": false, "pending_webhooks": len(f.endpoints), "request": request, "type": typ, "_seq": f.seq}
	f.events = append(f.events, e)
	for _, ep := range f.endpoints {
		ep.enqueue(e)
	}
}

func (f *Fake) listEvents(q req) (any, *apiErr) {
	all := make([]map[string]any, len(f.events))
	for i, e := range f.events {
		all[len(f.events)-1-i] = e // newest first
	}
	if t := first(q.params, "type"); t != "" {
		var keep []map[string]any
		for _, e := range all {
			if e["type"] == t {
				keep = append(keep, e)
			}
		}
		all = keep
	}
	page, more, err := pageOf(q, all, "event")
	if err != nil {
		return nil, err
	}
	out := make([]any, len(page))
	for i, e := range page {
		out[i] = clone(e)
	}
	return map[string]any{"object": "list", "data": out, "has_more": more, "url": "/v1/events"}, nil
}

func (f *Fake) getEvent(id string) (any, *apiErr) {
	for _, e := range f.events {
		if e["id"] == id {
			return clone(e), nil
		}
	}
	return nil, missing("event", id)
}

// Events returns every event so far, oldest first, as JSON.
func (f *Fake) Events() []json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]json.RawMessage, len(f.events))
	for i, e := range f.events {
		out[i], _ = json.Marshal(clone(e))
	}
	return out
}

// DropEvents forgets events made before the last n (as Stripe forgets
// events after 30 days).
func (f *Fake) DropEvents(keep int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if keep < len(f.events) {
		f.events = append([]map[string]any(nil), f.events[len(f.events)-keep:]...)
	}
}

// Sign returns the Stripe-Signature header of payload as Stripe would send
// it at time at, signed with each secret (several during a rotation).
func Sign(payload []byte, at time.Time, secrets ...string) string {
	h := fmt.Sprintf("t=%d", at.Unix())
	for _, s := range secrets {
		p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: s, Timestamp: at})
		h += fmt.Sprintf(",v1=%x", p.Signature)
	}
	return h
}

// Deliver POSTs one event to url signed with secret, now, and returns the
// status.
func Deliver(url, secret string, payload []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", Sign(payload, time.Now(), secret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// Endpoint is a webhook endpoint the fake delivers every new event to, in
// order, trying a failed delivery again a few times.
type Endpoint struct {
	url, secret string
	mu          sync.Mutex
	queue       [][]byte
	wake        chan struct{}
	quit        chan struct{}
	delivered   int
	failed      int
}

// AddEndpoint starts delivering events made from now on to url.
func (f *Fake) AddEndpoint(url, secret string) *Endpoint {
	ep := &Endpoint{url: url, secret: secret, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	f.mu.Lock()
	f.endpoints = append(f.endpoints, ep)
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		ep.run()
	}()
	return ep
}

func (ep *Endpoint) enqueue(e map[string]any) {
	b, _ := json.Marshal(clone(e))
	ep.mu.Lock()
	ep.queue = append(ep.queue, b)
	ep.mu.Unlock()
	select {
	case ep.wake <- struct{}{}:
	default:
	}
}

func (ep *Endpoint) stop() {
	select {
	case <-ep.quit:
	default:
		close(ep.quit)
	}
}

// Stats returns the deliveries answered 2xx and those that failed.
func (ep *Endpoint) Stats() (delivered, failed int) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.delivered, ep.failed
}

// Pending returns the number of events not yet delivered.
func (ep *Endpoint) Pending() int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return len(ep.queue)
}

func (ep *Endpoint) run() {
	for {
		ep.mu.Lock()
		var next []byte
		if len(ep.queue) > 0 {
			next = ep.queue[0]
		}
		ep.mu.Unlock()
		if next == nil {
			select {
			case <-ep.wake:
				continue
			case <-ep.quit:
				return
			}
		}
		pause := 50 * time.Millisecond
		for try := 0; ; try++ {
			code, err := Deliver(ep.url, ep.secret, next)
			ok := err == nil && code >= 200 && code < 300
			ep.mu.Lock()
			if ok {
				ep.delivered++
			} else {
				ep.failed++
			}
			ep.mu.Unlock()
			if ok || try == 20 {
				break
			}
			select {
			case <-ep.quit:
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, time.Second)
		}
		ep.mu.Lock()
		ep.queue = ep.queue[1:]
		ep.mu.Unlock()
	}
}
