// Package cli holds what the remix, ingest and pusher binaries share: the
// flags and environment variables that locate the configuration and Redis,
// and the logger.
package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/builtin"
)

// Common are the settings every binary accepts.
type Common struct {
	SystemsDir string // --systems, else SYSTEMS_DIR
	ModelsDir  string // --models, else MODELS_DIR
	RedisURL   string // --redis, else REDIS_URL (read when connecting), else redis://127.0.0.1:6379/0
	LogLevel   string // --log-level, else LOG_LEVEL, else info
	LogFormat  string // --log-format (text or json), else LOG_FORMAT, else text
}

// Register adds every common flag to fs, with defaults from the
// environment.
func (c *Common) Register(fs *flag.FlagSet) {
	c.RegisterConfig(fs)
	c.RegisterRedis(fs)
	c.RegisterLog(fs)
}

// RegisterConfig adds --systems and --models.
func (c *Common) RegisterConfig(fs *flag.FlagSet) {
	fs.StringVar(&c.SystemsDir, "systems", os.Getenv("SYSTEMS_DIR"), "folder of system YAML files (env SYSTEMS_DIR)")
	fs.StringVar(&c.ModelsDir, "models", os.Getenv("MODELS_DIR"), "folder of JSON Schema models (env MODELS_DIR)")
}

// RegisterRedis adds --redis. It has no default from the environment: the
// flag package prints defaults in its usage text, and the URL may hold a
// password; REDIS_URL is read when connecting.
func (c *Common) RegisterRedis(fs *flag.FlagSet) {
	fs.StringVar(&c.RedisURL, "redis", "", "Redis URL (env REDIS_URL; default "+defaultRedisURL+")")
}

// RegisterLog adds --log-level and --log-format.
func (c *Common) RegisterLog(fs *flag.FlagSet) {
	fs.StringVar(&c.LogLevel, "log-level", EnvOr("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", EnvOr("LOG_FORMAT", "text"), "text or json (env LOG_FORMAT)")
}

// EnvOr is the environment variable name, or def when it is unset or empty.
func EnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Load reads the configuration with the built-in connectors.
func (c *Common) Load() (*config.Config, error) { return c.load(false) }

// LoadUnsetWarn reads the configuration with an unset ${NAME} as a
// warning (config.Options.UnsetVariablesWarn): for checking it offline.
func (c *Common) LoadUnsetWarn() (*config.Config, error) { return c.load(true) }

func (c *Common) load(unsetWarn bool) (*config.Config, error) {
	var missing []string
	if c.SystemsDir == "" {
		missing = append(missing, "--systems (or SYSTEMS_DIR)")
	}
	if c.ModelsDir == "" {
		missing = append(missing, "--models (or MODELS_DIR)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no configuration folder given: name it with %s", strings.Join(missing, " and "))
	}
	return config.Load(config.Options{SystemsDir: c.SystemsDir, ModelsDir: c.ModelsDir, Specs: builtin.Connectors().Specs(),
		UnsetVariablesWarn: unsetWarn})
}

// Logger builds the process logger.
func (c *Common) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level // info when the command has no --log-level
	if err := level.UnmarshalText([]byte(c.LogLevel)); c.LogLevel != "" && err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.LogFormat) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", c.LogFormat)
}
