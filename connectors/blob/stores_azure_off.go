//go:build remix_no_azure

package blob

import (
	"context"
	"errors"

	"gocloud.dev/blob"

	"github.com/sqlpipe/remix/config"
)

// openAzure: this build leaves the store out (built with -tags remix_no_azure).
func openAzure(_ context.Context, s config.Settings) (*blob.Bucket, string, error) {
	return nil, "azure://" + s.String(SettingContainer), errors.New("this build of Remix was made without this store (-tags remix_no_azure)")
}
