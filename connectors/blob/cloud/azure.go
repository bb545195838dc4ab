//go:build !remix_no_azure

package cloud

import (
	"context"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/blob/stores"
)

func init() { stores.Register(stores.TypeAzure, openAzure) }

func openAzure(ctx context.Context, s config.Settings) (*blob.Bucket, string, error) {
	name := s.String(stores.SettingContainer)
	account := s.String(stores.SettingAccount)
	key, conn := s.Secret(stores.SettingKey), s.Secret(stores.SettingConnection)
	endpoint := strings.TrimSuffix(s.String(stores.SettingEndpoint), "/")
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
			return nil, where, fmt.Errorf("%s or %s and %s: not both", stores.SettingConnection, stores.SettingAccount, stores.SettingKey)
		}
		client, err = container.NewClientFromConnectionString(conn.Reveal(), name, nil)
	case account == "":
		return nil, where, fmt.Errorf("an Azure container needs %s (with %s, or Azure's default credentials) or %s", stores.SettingAccount, stores.SettingKey, stores.SettingConnection)
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
