package stripe

import (
	"fmt"
	"regexp"
	"time"

	stripego "github.com/stripe/stripe-go/v79"

	"github.com/sqlpipe/remix/config"
)

// Type is the connector type name used in system files.
const Type = "stripe"

// Setting names of a stripe system.
const (
	SettingAPIKey         = "api_key"
	SettingWebhookSecret  = "webhook_secret"
	SettingUseCLIListener = "use_cli_listener"
	SettingAPIBase        = "api_base"
	SettingPollInterval   = "poll_interval"
)

// DefaultPollInterval is how often the Events API is read for what webhooks
// missed.
const DefaultPollInterval = 30 * time.Second

// DefaultAPIBase is Stripe's API address, as stripe-go knows it.
const DefaultAPIBase = stripego.APIURL

// Spec describes a stripe system's keys for the configuration loader.
func Spec() *config.Spec {
	return &config.Spec{
		Type:    Type,
		Receive: true,
		Push:    true,
		Settings: []config.SettingSpec{
			{Name: SettingAPIKey, Kind: config.KindSecret, Required: true, Doc: "secret API key, sk_..."},
			{Name: SettingWebhookSecret, Kind: config.KindSecret, Doc: "signing secret of the webhook endpoint, whsec_...; several, comma-separated, while a secret is rotated"},
			{Name: SettingUseCLIListener, Kind: config.KindBool, Default: false, Doc: "forward webhooks with `stripe listen` when the Stripe CLI is installed"},
			{Name: SettingAPIBase, Kind: config.KindString, Default: DefaultAPIBase, Doc: "API address (stripe-mock in tests)"},
			{Name: SettingPollInterval, Kind: config.KindDuration, Default: DefaultPollInterval, Min: config.Float64(1),
				Doc: "how often the Events API is read for what webhooks missed"},
		},
		ReceiveLocation: checkObjectType,
		PushLocation:    checkResource,
		Warn: func(sys *config.System) []string {
			if err := CLIProblem(sys, nil); err != nil {
				return []string{err.Error()}
			}
			return nil
		},
	}
}

var (
	objectTypeSpelling = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	resourceSpelling   = regexp.MustCompile(`^[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)*$`)
)

func checkObjectType(loc string) error {
	if !objectTypeSpelling.MatchString(loc) {
		return fmt.Errorf("a Stripe receive location is an object type such as product, price or checkout.session")
	}
	return nil
}

func checkResource(loc string) error {
	if !resourceSpelling.MatchString(loc) {
		return fmt.Errorf("a Stripe push location is an API resource such as products or prices")
	}
	return nil
}
