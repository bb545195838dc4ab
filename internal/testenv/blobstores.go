package testenv

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"google.golang.org/api/option"
)

// The object stores scripts/test-servers.sh starts for blob datasets:
// versitygw (an S3 API over a folder), fake-gcs-server and Azurite. Each
// helper makes a bucket (or container) of its own for the test; without
// the store the test skips, or fails under CI.

// S3Bucket is a fresh bucket on the test S3 API server.
type S3Bucket struct {
	Endpoint, AccessKey, SecretKey, Bucket string
}

// NewS3Bucket creates a bucket on the S3 API server (REMIX_TEST_S3_ENDPOINT
// with REMIX_TEST_S3_ACCESS_KEY and REMIX_TEST_S3_SECRET_KEY).
func NewS3Bucket(t testing.TB) S3Bucket {
	t.Helper()
	b := S3Bucket{Endpoint: os.Getenv("REMIX_TEST_S3_ENDPOINT"), AccessKey: os.Getenv("REMIX_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("REMIX_TEST_S3_SECRET_KEY"), Bucket: bucketName()}
	if b.Endpoint == "" {
		Missing(t, "REMIX_TEST_S3_ENDPOINT is not set")
	}
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(b.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(b.AccessKey, b.SecretKey, "")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.Bucket)}); err != nil {
		Missing(t, "cannot create a bucket on the S3 API server at %s: %v", b.Endpoint, err)
	}
	return b
}

// GCSBucket is a fresh bucket on the test GCS server.
type GCSBucket struct {
	Endpoint, Bucket string
}

// NewGCSBucket creates a bucket on fake-gcs-server (REMIX_TEST_GCS_ENDPOINT).
func NewGCSBucket(t testing.TB) GCSBucket {
	t.Helper()
	b := GCSBucket{Endpoint: os.Getenv("REMIX_TEST_GCS_ENDPOINT"), Bucket: bucketName()}
	if b.Endpoint == "" {
		Missing(t, "REMIX_TEST_GCS_ENDPOINT is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := storage.NewClient(ctx, option.WithoutAuthentication(), option.WithEndpoint(b.Endpoint+"/storage/v1/"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bucket(b.Bucket).Create(ctx, "remix-test", nil); err != nil {
		Missing(t, "cannot create a bucket on fake-gcs-server at %s: %v", b.Endpoint, err)
	}
	return b
}

// AzureContainer is a fresh container on the test Azurite.
type AzureContainer struct {
	ConnectionString, Container string
}

// NewAzureContainer creates a container on Azurite
// (REMIX_TEST_AZURE_CONNECTION_STRING).
func NewAzureContainer(t testing.TB) AzureContainer {
	t.Helper()
	b := AzureContainer{ConnectionString: os.Getenv("REMIX_TEST_AZURE_CONNECTION_STRING"), Container: bucketName()}
	if b.ConnectionString == "" {
		Missing(t, "REMIX_TEST_AZURE_CONNECTION_STRING is not set")
	}
	c, err := container.NewClientFromConnectionString(b.ConnectionString, b.Container, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil {
		Missing(t, "cannot create a container on Azurite: %v", err)
	}
	return b
}

// bucketName is a bucket name unique to the test: lowercase letters,
// digits and dashes, as every store accepts.
func bucketName() string {
	return strings.ReplaceAll(UniqueName("remix-t"), "_", "-")
}
