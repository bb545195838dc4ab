package blob

import (
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/internal/testenv"
)

// The sink suite against each store's stand-in: versitygw for S3,
// fake-gcs-server for GCS, Azurite for Azure Blob.

func s3Settings(t *testing.T) map[string]any {
	b := testenv.NewS3Bucket(t)
	return map[string]any{SettingBucket: b.Bucket, SettingPrefix: "lake/remix", SettingEndpoint: b.Endpoint, SettingPathStyle: true,
		SettingRegion: "us-east-1", SettingAccessKeyID: config.NewSecret(b.AccessKey), SettingSecretAccessKey: config.NewSecret(b.SecretKey)}
}

func gcsSettings(t *testing.T) map[string]any {
	b := testenv.NewGCSBucket(t)
	return map[string]any{SettingBucket: b.Bucket, SettingPrefix: "lake", SettingEndpoint: b.Endpoint}
}

func azureSettings(t *testing.T) map[string]any {
	c := testenv.NewAzureContainer(t)
	return map[string]any{SettingContainer: c.Container, SettingPrefix: "lake", SettingConnection: config.NewSecret(c.ConnectionString)}
}

func TestS3SinkConformance(t *testing.T) {
	t.Parallel()
	suite(t, TypeS3, s3Settings)
}

func TestGCSSinkConformance(t *testing.T) {
	t.Parallel()
	suite(t, TypeGCS, gcsSettings)
}

func TestAzureSinkConformance(t *testing.T) {
	t.Parallel()
	suite(t, TypeAzure, azureSettings)
}
