// Package stripefake is a stateful stand-in for the few Stripe endpoints
// Remix uses (products, prices, events), for tests: stripe-mock checks
// that requests are well formed but keeps no state and sends no webhooks.
//
// It keeps objects, turns every change into an event (with the request's
// id and idempotency key, as Stripe does), answers the same idempotency
// key with the same parameters with the first answer and a different one
// with 400, delivers events to webhook endpoints signed as Stripe signs
// them, refuses what Stripe refuses (deleting a product that has prices,
// archiving a product's default price, changing a price's amount), and can
// answer a share of calls with 429. It counts every call.
package stripefake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIVersion is the version events are rendered in: stripe-go v79's.
const APIVersion = "2024-06-20"

// Fake is a running fake Stripe API.
type Fake struct {
	// URL is the API base, to use as api_base.
	URL string
	srv *httptest.Server

	mu        sync.Mutex
	now       func() time.Time
	seq       int
	products  map[string]map[string]any
	prices    map[string]map[string]any
	events    []map[string]any // oldest first
	idem      map[string]idemEntry
	calls     []Call
	faults    faults
	endpoints []*Endpoint
	wg        sync.WaitGroup
	closed    bool
}

// Call is one request the fake received.
type Call struct {
	Method, Path   string
	Params         map[string][]string // the form parameters, as sent
	IdempotencyKey string
	Status         int
	// Replayed: answered from an earlier request with the same key.
	Replayed bool
	// At is when the call arrived (the local clock, not SetClock's).
	At time.Time
}

type idemEntry struct {
	hash   string
	status int
	body   []byte
}

type faults struct {
	percent    int // of calls answered with 429
	retryAfter string
	rnd        *rand.Rand
	down       bool
}

// New starts a fake on a loopback port; it stops when the test ends.
func New(t interface {
	Cleanup(func())
}) *Fake {
	f := &Fake{now: time.Now, products: map[string]map[string]any{}, prices: map[string]map[string]any{}, idem: map[string]idemEntry{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	t.Cleanup(f.Close)
	return f
}

// Close stops the server and waits for deliveries under way.
func (f *Fake) Close() {
	f.mu.Lock()
	f.closed = true
	for _, ep := range f.endpoints {
		ep.stop()
	}
	f.mu.Unlock()
	f.wg.Wait()
	f.srv.Close()
}

// SetClock replaces the clock objects and events are stamped with.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// RateLimit answers percent of calls with 429 and Retry-After: retryAfter
// (seconds; "" for none), chosen with a fixed seed.
func (f *Fake) RateLimit(percent int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.percent, f.faults.retryAfter = percent, retryAfter
	f.faults.rnd = rand.New(rand.NewPCG(1, 2))
}

// SetDown makes every call fail with 503 (true) or serves again (false).
func (f *Fake) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.down = down
}

// Calls returns every call received so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Writes counts the calls that changed something: successful POSTs and
// DELETEs that were not replays of an earlier key.
func (f *Fake) Writes() int {
	n := 0
	for _, c := range f.Calls() {
		if c.Method != http.MethodGet && c.Status < 300 && !c.Replayed {
			n++
		}
	}
	return n
}

func (f *Fake) nextID(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s_fake%06d", prefix, f.seq)
}

// serve routes a request, after the faults and the idempotency check.
func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	params := parseForm(r, body)
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	reqID := f.nextID("req")
	call := Call{Method: r.Method, Path: r.URL.Path, Params: params, IdempotencyKey: key, At: time.Now()}
	status, out, replayed := f.handle(r, params, key, reqID)
	call.Status, call.Replayed = status, replayed
	f.calls = append(f.calls, call)
	retryAfter := f.faults.retryAfter
	date := f.now().UTC().Format(http.TimeFormat) // Stripe's clock, as events are stamped with it
	f.mu.Unlock()
	w.Header().Set("Date", date)
	w.Header().Set("Request-Id", reqID)
	w.Header().Set("Content-Type", "application/json")
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if status == http.StatusTooManyRequests && retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// handle answers a request with f.mu held.
func (f *Fake) handle(r *http.Request, params map[string][]string, key, reqID string) (int, []byte, bool) {
	if f.faults.down {
		return http.StatusServiceUnavailable, errorBody("api_error", "", "the fake is down"), false
	}
	if f.faults.percent > 0 && f.faults.rnd.IntN(100) < f.faults.percent {
		return http.StatusTooManyRequests, errorBody("invalid_request_error", "rate_limit", "Too many requests hit the API too quickly."), false
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer sk_") {
		return http.StatusUnauthorized, errorBody("invalid_request_error", "", "Invalid API Key provided."), false
	}
	if key != "" && r.Method != http.MethodGet {
		sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "?" + canonical(params)))
		hash := hex.EncodeToString(sum[:])
		if prev, ok := f.idem[key]; ok {
			if prev.hash != hash {
				return http.StatusBadRequest, errorBody("idempotency_error", "",
					"Keys for idempotent requests can only be used with the same parameters they were first used with."), false
			}
			return prev.status, prev.body, true
		}
		status, body := f.route(r, params, key, reqID)
		if status != http.StatusTooManyRequests && status < 500 {
			f.idem[key] = idemEntry{hash: hash, status: status, body: body}
		}
		return status, body, false
	}
	status, body := f.route(r, params, key, reqID)
	return status, body, false
}

// req is what a handler needs of the request.
type req struct {
	params map[string][]string
	key    string
	id     string
}

func (f *Fake) route(r *http.Request, params map[string][]string, key, reqID string) (int, []byte) {
	q := req{params: params, key: key, id: reqID}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "v1" {
		return http.StatusNotFound, errorBody("invalid_request_error", "", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+").")
	}
	res, id := parts[1], ""
	if len(parts) == 3 {
		id = parts[2]
	}
	if len(parts) > 3 {
		return http.StatusNotFound, errorBody("invalid_request_error", "", "Unrecognized request URL.")
	}
	var v any
	var err *apiErr
	switch {
	case res == "products" && id == "" && r.Method == http.MethodPost:
		v, err = f.createProduct(q)
	case res == "products" && id == "" && r.Method == http.MethodGet:
		v, err = f.list(q, f.products)
	case res == "products" && r.Method == http.MethodGet:
		v, err = f.getProduct(q, id)
	case res == "products" && r.Method == http.MethodPost:
		v, err = f.updateProduct(q, id)
	case res == "products" && r.Method == http.MethodDelete:
		v, err = f.deleteProduct(q, id)
	case res == "prices" && id == "" && r.Method == http.MethodPost:
		v, err = f.createPrice(q)
	case res == "prices" && id == "" && r.Method == http.MethodGet:
		v, err = f.list(q, f.prices)
	case res == "prices" && r.Method == http.MethodGet:
		v, err = f.getPrice(q, id)
	case res == "prices" && r.Method == http.MethodPost:
		v, err = f.updatePrice(q, id)
	case res == "events" && id == "" && r.Method == http.MethodGet:
		v, err = f.listEvents(q)
	case res == "events" && r.Method == http.MethodGet:
		v, err = f.getEvent(id)
	default:
		return http.StatusNotFound, errorBody("invalid_request_error", "", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+").")
	}
	if err != nil {
		return err.status, errorBody(err.typ, err.code, err.msg)
	}
	b, _ := json.Marshal(v)
	return http.StatusOK, b
}

type apiErr struct {
	status         int
	typ, code, msg string
}

func badRequest(msg string) *apiErr {
	return &apiErr{status: http.StatusBadRequest, typ: "invalid_request_error", msg: msg}
}

func missing(kind, id string) *apiErr {
	return &apiErr{status: http.StatusNotFound, typ: "invalid_request_error", code: "resource_missing", msg: fmt.Sprintf("No such %s: '%s'", kind, id)}
}

func errorBody(typ, code, msg string) []byte {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return b
}

// canonical renders parameters in a fixed order.
func canonical(params map[string][]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		for _, v := range params[k] {
			b.WriteString(k + "=" + v + "&")
		}
	}
	return b.String()
}

// list answers a list call over objects, newest first, paged with limit
// and starting_after.
func (f *Fake) list(q req, objects map[string]map[string]any) (any, *apiErr) {
	all := make([]map[string]any, 0, len(objects))
	for _, o := range objects {
		all = append(all, o)
	}
	sort.Slice(all, func(i, j int) bool { return newer(all[i], all[j]) })
	page, more, err := pageOf(q, all, "object")
	if err != nil {
		return nil, err
	}
	out := make([]any, len(page))
	for i, o := range page {
		out[i] = clone(o)
	}
	return map[string]any{"object": "list", "data": out, "has_more": more, "url": "/v1/list"}, nil
}

// newer orders objects and events newest first: by created, then by the
// order the fake made them.
func newer(a, b map[string]any) bool {
	ca, cb := a["created"].(int64), b["created"].(int64)
	if ca != cb {
		return ca > cb
	}
	return a["_seq"].(int) > b["_seq"].(int)
}

// pageOf cuts one page out of a newest-first list.
func pageOf(q req, all []map[string]any, kind string) ([]map[string]any, bool, *apiErr) {
	limit := 10
	if l := first(q.params, "limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			return nil, false, badRequest("Invalid limit: must be between 1 and 100")
		}
		limit = n
	}
	index := func(id string) int {
		for i, o := range all {
			if o["id"] == id {
				return i
			}
		}
		return -1
	}
	if after := first(q.params, "starting_after"); after != "" {
		i := index(after)
		if i < 0 {
			return nil, false, missing(kind, after)
		}
		rest := all[i+1:]
		return rest[:min(limit, len(rest))], len(rest) > limit, nil
	}
	if before := first(q.params, "ending_before"); before != "" {
		i := index(before)
		if i < 0 {
			return nil, false, missing(kind, before)
		}
		rest := all[:i] // the newer ones; the page is the limit of them closest to before
		start := max(0, len(rest)-limit)
		return rest[start:], start > 0, nil
	}
	return all[:min(limit, len(all))], len(all) > limit, nil
}

func first(params map[string][]string, k string) string {
	if v := params[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// clone deep-copies an object and drops the fake's own fields.
func clone(o map[string]any) map[string]any {
	out := make(map[string]any, len(o))
	for k, v := range o {
		if strings.HasPrefix(k, "_") {
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			out[k] = clone(x)
		case []any:
			out[k] = append(make([]any, 0, len(x)), x...)
		default:
			out[k] = v
		}
	}
	return out
}
