//go:build remix_no_s3

package blob

import (
	"context"
	"errors"

	"gocloud.dev/blob"

	"github.com/sqlpipe/remix/config"
)

// openS3: this build leaves the store out (built with -tags remix_no_s3).
func openS3(_ context.Context, s config.Settings) (*blob.Bucket, string, error) {
	return nil, "s3://" + s.String(SettingBucket), errors.New("this build of Remix was made without this store (-tags remix_no_s3)")
}
