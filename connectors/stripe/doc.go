// Package stripe describes Stripe systems for the configuration loader:
// their keys (api_key, webhook_secret, use_cli_listener, api_base) and the
// spelling of their locations (object types to receive, API resources to
// push), and the form encoding the API takes (FormValues). The webhook
// source and the API sink are not in this build.
package stripe
