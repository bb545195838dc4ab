package blob

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcp"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/sqlpipe/remix/config"
)

// store is where a system's datasets live: an open bucket, the prefix
// inside it, and a name for messages.
type store struct {
	bucket *blob.Bucket
	prefix string // "" or ending in "/"
	where  string // for messages: s3://bucket/prefix, /data/lake
}

// OpenStore opens the bucket of a blob system. Each store has its own few
// lines here; everything after the bucket is the same for all of them.
func OpenStore(ctx context.Context, sys *config.System) (*blob.Bucket, string, error) {
	st, err := openStore(ctx, sys)
	if err != nil {
		return nil, "", err
	}
	return st.bucket, st.prefix, nil
}

func openStore(ctx context.Context, sys *config.System) (*store, error) {
	s := sys.Settings
	prefix := strings.Trim(s.String(SettingPrefix), "/")
	if prefix != "" {
		prefix += "/"
	}
	var (
		b     *blob.Bucket
		where string
		err   error
	)
	switch sys.Type {
	case TypeFile:
		b, where, err = openFile(s)
		prefix = ""
	case TypeS3:
		b, where, err = openS3(ctx, s)
	case TypeGCS:
		b, where, err = openGCS(ctx, s)
	case TypeAzure:
		b, where, err = openAzure(ctx, s)
	default:
		return nil, fmt.Errorf("%s is not a blob store type", sys.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", where, err)
	}
	return &store{bucket: b, prefix: prefix, where: where + "/" + prefix}, nil
}

func openFile(s config.Settings) (*blob.Bucket, string, error) {
	dir, err := filepath.Abs(s.String(SettingPath))
	if err != nil {
		return nil, s.String(SettingPath), err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, dir, err
	}
	// Files are written to a temporary name beside their final one and
	// renamed when complete; no .attrs side files (metadata goes into the
	// file names and the files themselves).
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	return b, dir, err
}

func openS3(ctx context.Context, s config.Settings) (*blob.Bucket, string, error) {
	bucket := s.String(SettingBucket)
	where := "s3://" + bucket
	var opts []func(*awsconfig.LoadOptions) error
	if r := s.String(SettingRegion); r != "" {
		opts = append(opts, awsconfig.WithRegion(r))
	}
	id, secret := s.Secret(SettingAccessKeyID), s.Secret(SettingSecretAccessKey)
	if id.IsZero() != secret.IsZero() {
		return nil, where, fmt.Errorf("%s and %s go together: set both, or neither for the usual AWS chain", SettingAccessKeyID, SettingSecretAccessKey)
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
	endpoint := s.String(SettingEndpoint)
	if endpoint != "" {
		where = endpoint + "/" + bucket
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = s.Bool(SettingPathStyle)
		// Checksums only where S3 requires them: S3-compatible stores
		// (VAST, older MinIO) refuse the newer trailing checksums.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	b, err := s3blob.OpenBucket(ctx, client, bucket, nil)
	return b, where, err
}

func openGCS(ctx context.Context, s config.Settings) (*blob.Bucket, string, error) {
	bucket := s.String(SettingBucket)
	where := "gs://" + bucket
	if endpoint := strings.TrimSuffix(s.String(SettingEndpoint), "/"); endpoint != "" {
		where = endpoint + "/" + bucket
		c, err := storage.NewClient(ctx, option.WithoutAuthentication(), option.WithEndpoint(endpoint+"/storage/v1/"))
		if err != nil {
			return nil, where, err
		}
		b, err := gcsblob.OpenBucket(ctx, nil, bucket, &gcsblob.Options{Client: c})
		return b, where, err
	}
	var ts gcp.TokenSource
	if file := s.String(SettingCredentialsFile); file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, where, fmt.Errorf("reading %s: %w", SettingCredentialsFile, err)
		}
		creds, err := google.CredentialsFromJSON(ctx, data, storage.ScopeReadWrite)
		if err != nil {
			return nil, where, fmt.Errorf("%s %s: %w", SettingCredentialsFile, file, err)
		}
		ts = gcp.CredentialsTokenSource(creds)
	} else {
		creds, err := gcp.DefaultCredentials(ctx)
		if err != nil {
			return nil, where, fmt.Errorf("no %s and no Application Default Credentials: %w", SettingCredentialsFile, err)
		}
		ts = gcp.CredentialsTokenSource(creds)
	}
	client, err := gcp.NewHTTPClient(gcp.DefaultTransport(), ts)
	if err != nil {
		return nil, where, err
	}
	b, err := gcsblob.OpenBucket(ctx, client, bucket, nil)
	return b, where, err
}

func openAzure(ctx context.Context, s config.Settings) (*blob.Bucket, string, error) {
	name := s.String(SettingContainer)
	account := s.String(SettingAccount)
	key, conn := s.Secret(SettingKey), s.Secret(SettingConnection)
	endpoint := strings.TrimSuffix(s.String(SettingEndpoint), "/")
	if endpoint == "" && account != "" {
		endpoint = "https://" + account + ".blob.core.windows.net"
	}
	where := "azure://" + name
	if endpoint != "" {
		where = endpoint + "/" + name
	}
	var (
		client *container.Client
		err    error
	)
	switch {
	case !conn.IsZero():
		if !key.IsZero() || account != "" {
			return nil, where, fmt.Errorf("%s or %s and %s: not both", SettingConnection, SettingAccount, SettingKey)
		}
		client, err = container.NewClientFromConnectionString(conn.Reveal(), name, nil)
	case account == "":
		return nil, where, fmt.Errorf("an Azure container needs %s (with %s, or Azure's default credentials) or %s", SettingAccount, SettingKey, SettingConnection)
	case !key.IsZero():
		var cred *container.SharedKeyCredential
		if cred, err = container.NewSharedKeyCredential(account, key.Reveal()); err == nil {
			client, err = container.NewClientWithSharedKeyCredential(endpoint+"/"+name, cred, nil)
		}
	default:
		var cred *azidentity.DefaultAzureCredential
		if cred, err = azidentity.NewDefaultAzureCredential(nil); err == nil {
			client, err = container.NewClient(endpoint+"/"+name, cred, nil)
		}
	}
	if err != nil {
		return nil, where, err
	}
	b, err := azureblob.OpenBucket(ctx, client, nil)
	return b, where, err
}
