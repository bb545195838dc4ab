package stripe

import (
	"context"
	"errors"
	"net/http"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/mixer"
)

// Check asks Stripe, with one read, whether the API key is valid
// (connectors.Checker): a key Stripe refuses (401) is an error at api_key,
// an API it cannot reach at api_base. A key that may not read the balance
// (403, a restricted key) is valid: its other permissions show when it is
// used.
func (s *Source) Check(ctx context.Context, _ map[string]*mixer.Model) (errs, warnings config.Errors) {
	return checkKey(ctx, s.sys, s.api), nil
}

// Check is the sink's: see Source.Check.
func (s *Sink) Check(ctx context.Context, _ map[string]*mixer.Model) (errs, warnings config.Errors) {
	return checkKey(ctx, s.sys, s.api), nil
}

func checkKey(ctx context.Context, sys *config.System, api *client) config.Errors {
	_, err := api.once(ctx, http.MethodGet, "/v1/balance", nil, "")
	var ae *APIError
	switch {
	case err == nil, errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return nil
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return config.Errors{{Pos: sys.PosOf(SettingAPIKey), Key: config.KeyPath(sys.Name, SettingAPIKey), Msg: "Stripe refuses the API key: " + err.Error()}}
	}
	return config.Errors{{Pos: sys.PosOf(SettingAPIBase), Key: config.KeyPath(sys.Name, SettingAPIBase),
		Msg: "cannot ask Stripe at " + apiBase(sys) + " whether the API key is valid: " + err.Error()}}
}
