package stripe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/form"

	"github.com/sqlpipe/remix/connectors"
)

// APIError is an answer of Stripe's API that is not a success: its HTTP
// status and Stripe's own description of the problem.
type APIError struct {
	Status    int
	Type      string // invalid_request_error, api_error, idempotency_error, ...
	Code      string // resource_missing, resource_already_exists, ...
	Param     string
	Message   string
	RequestID string
	// RetryAfter is the pause the answer asked for (Retry-After), 0 if none.
	RetryAfter time.Duration
	// ShouldRetry is the Stripe-Should-Retry header: "true", "false" or "".
	ShouldRetry string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stripe answered %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// retryable reports whether the same call may succeed later: rate limited,
// a conflicting request in flight, Stripe's own trouble; Stripe-Should-Retry
// decides when it is set.
func (e *APIError) retryable() bool {
	switch e.ShouldRetry {
	case "true":
		return true
	case "false":
		return false
	}
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusConflict || e.Status >= 500
}

// missing reports a 404: the object named in the path does not exist.
func (e *APIError) missing() bool { return e.Status == http.StatusNotFound }

// classify turns a call's failure into what the pusher acts on: the account
// (a revoked key, missing permissions) and Stripe's outages are
// ErrUnavailable, retried until fixed; any other refusal of this one
// request is ErrPermanent with Stripe's message, for the dead-letter queue.
func classify(err error) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err // already classified (network trouble: ErrUnavailable) or a context error
	}
	switch {
	case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
		return fmt.Errorf("%w: the API key is refused (check api_key and its permissions): %w", connectors.ErrUnavailable, err)
	case ae.retryable() || ae.Status >= 500:
		return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %w", connectors.ErrPermanent, err)
}

// client calls Stripe's API through stripe-go's backend, one request at a
// time, with Remix's own retry rules: stripe-go's retries are off so that
// every attempt is seen (and counted) here.
type client struct {
	backend stripego.Backend
	key     string
	log     *slog.Logger
	// attempts bounds the tries of one call before it is given up as
	// unavailable (the pusher retries the write later).
	attempts int
	// backoff is the first pause after a failure without Retry-After;
	// it doubles up to maxBackoff.
	backoff, maxBackoff time.Duration
	// calls, when set, is told of every request sent.
	calls func(method, path string)
	// limiter, when set, is the system's shared rate limit: every request
	// waits for it first, retries included.
	limiter connectors.RateLimiter
}

func newClient(apiBase, key string, log *slog.Logger, httpClient *http.Client) *client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 80 * time.Second}
	}
	backend := stripego.GetBackendWithConfig(stripego.APIBackend, &stripego.BackendConfig{
		URL:               stripego.String(apiBase),
		HTTPClient:        httpClient,
		MaxNetworkRetries: stripego.Int64(0),
		LeveledLogger:     quietLogger{},
		EnableTelemetry:   stripego.Bool(false),
	})
	return &client{backend: backend, key: key, log: log, attempts: 8, backoff: 250 * time.Millisecond, maxBackoff: 10 * time.Second}
}

// rawResponse keeps an answer as it came.
type rawResponse struct {
	stripego.APIResource
}

// response is a successful answer: its object, decoded with numbers kept
// as json.Number, and when Stripe's clock said it was sent.
type response struct {
	Object    map[string]any
	RequestID string
	Date      time.Time
}

// call sends one request and returns its object. A rate-limited answer
// (429) waits for Retry-After, or a growing pause, and is sent again, as
// are conflicts, Stripe's 5xx answers and network failures, unless
// Stripe-Should-Retry says no; past the attempts the call is given up as
// ErrUnavailable. Any other refusal comes back as an *APIError.
func (c *client) call(ctx context.Context, method, path string, params url.Values, idemKey string) (*response, error) {
	pause := c.backoff
	var last error
	for attempt := 1; attempt <= c.attempts; attempt++ {
		res, err := c.once(ctx, method, path, params, idemKey)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		last = err
		wait := pause
		var ae *APIError
		if errors.As(err, &ae) {
			if !ae.retryable() {
				return nil, err
			}
			if ae.RetryAfter > 0 {
				wait = ae.RetryAfter
			}
		}
		if attempt == c.attempts {
			break
		}
		c.log.Debug("stripe call failed; trying again", "method", method, "path", path, "attempt", attempt, "in", wait, "error", err)
		if err := connectors.Sleep(ctx, wait); err != nil {
			return nil, err
		}
		pause = min(2*pause, c.maxBackoff)
	}
	return nil, fmt.Errorf("%w: %s %s failed %d times: %w", connectors.ErrUnavailable, method, path, c.attempts, last)
}

func (c *client) once(ctx context.Context, method, path string, params url.Values, idemKey string) (*response, error) {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx, 1); err != nil {
			return nil, err
		}
	}
	if c.calls != nil {
		c.calls(method, path)
	}
	var body *form.Values
	if len(params) > 0 {
		body = &form.Values{}
		for _, k := range sortedKeys(params) {
			for _, v := range params[k] {
				body.Add(k, v)
			}
		}
	}
	p := &stripego.Params{Context: ctx}
	if idemKey != "" {
		p.IdempotencyKey = stripego.String(idemKey)
	}
	var raw rawResponse
	err := c.backend.CallRaw(method, path, c.key, body, p, &raw)
	if err != nil {
		var se *stripego.Error
		if errors.As(err, &se) {
			return nil, apiError(se)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s %s: %w", connectors.ErrUnavailable, method, path, err)
	}
	out := &response{}
	if lr := raw.LastResponse; lr != nil {
		out.RequestID = lr.RequestID
		if d, err := http.ParseTime(lr.Header.Get("Date")); err == nil {
			out.Date = d
		}
		obj, err := decodeObject(lr.RawJSON)
		if err != nil {
			return nil, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
		out.Object = obj
	}
	if out.Date.IsZero() {
		out.Date = time.Now()
	}
	return out, nil
}

func apiError(se *stripego.Error) *APIError {
	ae := &APIError{Status: se.HTTPStatusCode, Type: string(se.Type), Code: string(se.Code), Param: se.Param,
		Message: se.Msg, RequestID: se.RequestID}
	if lr := se.LastResponse; lr != nil {
		ae.ShouldRetry = lr.Header.Get("Stripe-Should-Retry")
		if s, err := strconv.Atoi(strings.TrimSpace(lr.Header.Get("Retry-After"))); err == nil && s >= 0 {
			ae.RetryAfter = time.Duration(s) * time.Second
		}
		if ae.RequestID == "" {
			ae.RequestID = lr.RequestID
		}
	}
	return ae
}

// decodeObject reads a JSON object with numbers as json.Number.
func decodeObject(b []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// quietLogger drops stripe-go's own log lines: every failure comes back as
// an error, and Remix logs what is actionable.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warnf(string, ...any)  {}
