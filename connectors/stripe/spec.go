package stripe

import (
	"fmt"
	"regexp"

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
)

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
			{Name: SettingWebhookSecret, Kind: config.KindSecret, Doc: "signing secret of the webhook endpoint, whsec_..."},
			{Name: SettingUseCLIListener, Kind: config.KindBool, Default: false, Doc: "forward webhooks with `stripe listen` when the Stripe CLI is installed"},
			{Name: SettingAPIBase, Kind: config.KindString, Default: DefaultAPIBase, Doc: "API address (stripe-mock in tests)"},
		},
		ReceiveLocation: checkObjectType,
		PushLocation:    checkResource,
	}
}

var (
	objectType = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	resource   = regexp.MustCompile(`^[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)*$`)
)

func checkObjectType(loc string) error {
	if !objectType.MatchString(loc) {
		return fmt.Errorf("a Stripe receive location is an object type such as product, price or checkout.session")
	}
	return nil
}

func checkResource(loc string) error {
	if !resource.MatchString(loc) {
		return fmt.Errorf("a Stripe push location is an API resource such as products or prices")
	}
	return nil
}
