//go:build remix_no_gcs

package blob

import (
	"context"
	"errors"

	"gocloud.dev/blob"

	"github.com/sqlpipe/remix/config"
)

// openGCS: this build leaves the store out (built with -tags remix_no_gcs).
func openGCS(_ context.Context, s config.Settings) (*blob.Bucket, string, error) {
	return nil, "gs://" + s.String(SettingBucket), errors.New("this build of Remix was made without this store (-tags remix_no_gcs)")
}
