//go:build !remix_no_gcs

package cloud

import (
	"context"
	"fmt"
	"os"
	"strings"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/gcp"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/blob/stores"
)

func init() { stores.Register(stores.TypeGCS, openGCS) }

func openGCS(ctx context.Context, s config.Settings) (*blob.Bucket, string, error) {
	bucket := s.String(stores.SettingBucket)
	where := "gs://" + bucket
	if endpoint := strings.TrimSuffix(s.String(stores.SettingEndpoint), "/"); endpoint != "" {
		where = endpoint + "/" + bucket
		c, err := storage.NewClient(ctx, option.WithoutAuthentication(), option.WithEndpoint(endpoint+"/storage/v1/"))
		if err != nil {
			return nil, where, err
		}
		b, err := gcsblob.OpenBucket(ctx, nil, bucket, &gcsblob.Options{Client: c})
		return b, where, err
	}
	var ts gcp.TokenSource
	if file := s.String(stores.SettingCredentialsFile); file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, where, fmt.Errorf("reading %s: %w", stores.SettingCredentialsFile, err)
		}
		creds, err := google.CredentialsFromJSON(ctx, data, storage.ScopeReadWrite)
		if err != nil {
			return nil, where, fmt.Errorf("%s %s: %w", stores.SettingCredentialsFile, file, err)
		}
		ts = gcp.CredentialsTokenSource(creds)
	} else {
		creds, err := gcp.DefaultCredentials(ctx)
		if err != nil {
			return nil, where, fmt.Errorf("no %s and no Application Default Credentials: %w", stores.SettingCredentialsFile, err)
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
