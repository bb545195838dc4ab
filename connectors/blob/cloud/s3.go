//go:build !remix_no_s3

package cloud

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/blob/stores"
)

func init() { stores.Register(stores.TypeS3, openS3) }

func openS3(ctx context.Context, s config.Settings) (*blob.Bucket, string, error) {
	bucket := s.String(stores.SettingBucket)
	where := "s3://" + bucket
	var opts []func(*awsconfig.LoadOptions) error
	if r := s.String(stores.SettingRegion); r != "" {
		opts = append(opts, awsconfig.WithRegion(r))
	}
	id, secret := s.Secret(stores.SettingAccessKeyID), s.Secret(stores.SettingSecretAccessKey)
	if id.IsZero() != secret.IsZero() {
		return nil, where, fmt.Errorf("%s and %s go together: set both, or neither for the usual AWS chain", stores.SettingAccessKeyID, stores.SettingSecretAccessKey)
	}
	if !id.IsZero() {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id.Reveal(), secret.Reveal(), "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, where, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // S3-compatible stores mostly ignore it; AWS redirects
	}
	endpoint := s.String(stores.SettingEndpoint)
	if endpoint != "" {
		where = endpoint + "/" + bucket
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = s.Bool(stores.SettingPathStyle)
		// Checksums only where S3 requires them: S3-compatible stores
		// (VAST, older MinIO) refuse the newer trailing checksums.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	b, err := s3blob.OpenBucket(ctx, client, bucket, nil)
	return b, where, err
}
