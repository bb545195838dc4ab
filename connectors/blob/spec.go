package blob

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/blob/stores"
)

// The connector types of the four stores. They share the sink; only the
// keys that reach the store differ.
const (
	TypeS3    = stores.TypeS3
	TypeGCS   = stores.TypeGCS
	TypeAzure = stores.TypeAzure
	TypeFile  = "file"
)

// Setting names. Not every store has every one: see Spec. The cloud
// stores' are package stores', which package cloud reads them by.
const (
	SettingPath            = "path"
	SettingBucket          = stores.SettingBucket
	SettingContainer       = stores.SettingContainer
	SettingPrefix          = "prefix"
	SettingRegion          = stores.SettingRegion
	SettingEndpoint        = stores.SettingEndpoint
	SettingPathStyle       = stores.SettingPathStyle
	SettingAccessKeyID     = stores.SettingAccessKeyID
	SettingSecretAccessKey = stores.SettingSecretAccessKey
	SettingCredentialsFile = stores.SettingCredentialsFile
	SettingAccount         = stores.SettingAccount
	SettingKey             = stores.SettingKey
	SettingConnection      = stores.SettingConnection
	SettingFormat          = "format"
	SettingMaxFileBytes    = "max_file_bytes"
	SettingMaxFileAge      = "max_file_age"
)

// File formats.
const (
	FormatParquet = "parquet"
	FormatJSONL   = "jsonl"
)

// Defaults of the common keys.
const (
	DefaultMaxFileBytes = 128 << 20
	DefaultMaxFileAge   = time.Minute
)

// Types lists the connector types this package serves, for the registry.
func Types() []string { return []string{TypeS3, TypeGCS, TypeAzure, TypeFile} }

// Spec describes the keys of a system of one of the store types.
func Spec(typ string) *config.Spec {
	common := []config.SettingSpec{
		{Name: SettingFormat, Kind: config.KindString, Default: FormatParquet, Check: checkFormat,
			Doc: "parquet (zstd) or jsonl (gzip)"},
		{Name: SettingMaxFileBytes, Kind: config.KindString, Default: "128MiB", Check: checkSize,
			Doc: "a file is closed once it holds this many bytes: plain bytes or a number with KB, MB, GB, KiB, MiB, GiB"},
		{Name: SettingMaxFileAge, Kind: config.KindDuration, Default: DefaultMaxFileAge, Min: config.Float64(0.01),
			Doc: "each file holds the changes of one window of this length; a window's files are written once it is over"},
	}
	prefix := config.SettingSpec{Name: SettingPrefix, Kind: config.KindString, Default: "", Check: checkPrefix,
		Doc: "the folder inside the bucket that holds the datasets"}
	var own []config.SettingSpec
	switch typ {
	case TypeFile:
		own = []config.SettingSpec{
			{Name: SettingPath, Kind: config.KindString, Required: true, Doc: "the local folder that holds the datasets"},
		}
	case TypeS3:
		own = []config.SettingSpec{
			{Name: SettingBucket, Kind: config.KindString, Required: true, Doc: "the bucket"},
			prefix,
			{Name: SettingRegion, Kind: config.KindString, Default: "", Doc: "the bucket's region (the AWS chain's when empty)"},
			{Name: SettingEndpoint, Kind: config.KindString, Default: "", Doc: "the address of an S3-compatible store (VAST, MinIO, versitygw)"},
			{Name: SettingPathStyle, Kind: config.KindBool, Default: false, Doc: "address the bucket in the path, not the host name"},
			{Name: SettingAccessKeyID, Kind: config.KindSecret, Doc: "with secret_access_key; the usual AWS chain when both are empty"},
			{Name: SettingSecretAccessKey, Kind: config.KindSecret, Doc: "with access_key_id"},
		}
	case TypeGCS:
		own = []config.SettingSpec{
			{Name: SettingBucket, Kind: config.KindString, Required: true, Doc: "the bucket"},
			prefix,
			{Name: SettingCredentialsFile, Kind: config.KindString, Default: "", Doc: "a service account key file; Application Default Credentials when empty"},
			{Name: SettingEndpoint, Kind: config.KindString, Default: "", Doc: "another address for the JSON API (an emulator), without credentials"},
		}
	case TypeAzure:
		own = []config.SettingSpec{
			{Name: SettingContainer, Kind: config.KindString, Required: true, Doc: "the container"},
			prefix,
			{Name: SettingAccount, Kind: config.KindString, Default: "", Doc: "the storage account (with key, or Azure's default credential chain)"},
			{Name: SettingKey, Kind: config.KindSecret, Doc: "the account's shared key"},
			{Name: SettingConnection, Kind: config.KindSecret, Doc: "a connection string, instead of account and key"},
			{Name: SettingEndpoint, Kind: config.KindString, Default: "", Doc: "the blob service address when it is not https://ACCOUNT.blob.core.windows.net"},
		}
	default:
		return nil
	}
	return &config.Spec{Type: typ, Push: true, Settings: append(own, common...), PushLocation: CheckLocation}
}

var locationName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// CheckLocation checks a dataset name: a folder name under the prefix.
func CheckLocation(loc string) error {
	if !locationName.MatchString(loc) || strings.Contains(loc, "..") {
		return errors.New("a dataset location is a folder name such as people (letters, digits, _, - and ., at most 128)")
	}
	return nil
}

func checkFormat(s string) error {
	if s != FormatParquet && s != FormatJSONL {
		return fmt.Errorf("format is parquet or jsonl, found %q", s)
	}
	return nil
}

func checkPrefix(s string) error {
	if strings.HasPrefix(s, "/") || strings.Contains(s, "//") || strings.Contains(s, "..") {
		return fmt.Errorf("a prefix is a relative folder such as lake/remix, found %q", s)
	}
	return nil
}

func checkSize(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	if n < 1<<10 {
		return fmt.Errorf("must be at least 1KiB, found %q", s)
	}
	return nil
}

// ParseSize reads a byte count: plain digits or a number with KB, MB, GB,
// KiB, MiB or GiB.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("expected a size such as 128MiB, found %q", s)
	}
	return n * mult, nil
}
