package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// sessionParams make every session print values the way decodeText reads
// them.
var sessionParams = map[string]string{"DateStyle": "ISO, YMD", "TimeZone": "UTC", "IntervalStyle": "postgres", "extra_float_digits": "1"}

// newPool opens the query pool of a system with its pool settings.
func newPool(ctx context.Context, sys *config.System, app string) (*pgxpool.Pool, error) {
	dsn := sys.Settings.Secret(SettingDSN)
	cfg, err := pgxpool.ParseConfig(dsn.Reveal())
	if err != nil {
		return nil, fmt.Errorf("%s: dsn %s: %w", sys.PosOf(SettingDSN), dsn, redactErr(err, dsn))
	}
	cfg.MaxConns = int32(sys.Settings.Int(SettingMaxOpen))
	cfg.MinIdleConns = int32(min(sys.Settings.Int(SettingMaxIdle), sys.Settings.Int(SettingMaxOpen)))
	cfg.MaxConnIdleTime = sys.Settings.Duration(SettingMaxIdleTime)
	for k, v := range sessionParams {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s (%s): %w", sys.Name, dsn, redactErr(err, dsn))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to %s (%s): %w", sys.Name, dsn, redactErr(err, dsn))
	}
	return pool, nil
}

// redactErr keeps a connection error from quoting the password, should a
// driver ever print the connection string.
func redactErr(err error, dsn config.Secret) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if pw := passwordOf(dsn.Reveal()); pw != "" && strings.Contains(msg, pw) {
		return errors.New(strings.ReplaceAll(msg, pw, "xxxxx"))
	}
	return err
}

func passwordOf(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return cfg.Password
}

// mapError classifies a PostgreSQL error for the pusher: data the target
// refuses is permanent (dead-lettered); trouble with the target as a whole
// (unreachable, shut down, a table or column gone, no permission) makes it
// unavailable (retried until fixed); conflicts between sessions are
// transient (retried a few times).
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg := describe(pgErr)
		if pgErr.ConstraintName == fenceConstraint { // before class 23: not a bad record
			return fmt.Errorf("%w (%s)", connectors.ErrFenced, msg)
		}
		switch pgErr.Code[:2] {
		case "22", "23": // data exception, integrity constraint violation
			return fmt.Errorf("%w: %s", connectors.ErrPermanent, msg)
		case "21": // cardinality violation: two records of a batch that the
			// column's assignment makes one row (keys 'ab' and 'ab ' of a
			// character(n) column, 1.239 and 1.241 of a numeric(5,2) one)
			// meet in one statement; the pusher splits the batch, and each
			// applies alone, in order.
			return fmt.Errorf("%w: %s", connectors.ErrPermanent, msg)
		case "40": // serialization failure, deadlock
			return fmt.Errorf("%s", msg)
		case "55", "57": // lock not available, query canceled; operator intervention
			if pgErr.Code == "55P03" || pgErr.Code == "57014" {
				return fmt.Errorf("%s", msg)
			}
			return fmt.Errorf("%w: %s", connectors.ErrUnavailable, msg)
		default: // 42 (missing table or column, permission), 08, 53, 58, XX...
			return fmt.Errorf("%w: %s", connectors.ErrUnavailable, msg)
		}
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed") {
		return fmt.Errorf("%w: %v", connectors.ErrUnavailable, err)
	}
	return err
}

func describe(e *pgconn.PgError) string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Detail != "" {
		b.WriteString(" (" + e.Detail + ")")
	}
	if e.TableName != "" {
		b.WriteString(" in table " + e.TableName)
	}
	if e.ConstraintName != "" {
		b.WriteString(", constraint " + e.ConstraintName)
	}
	b.WriteString(" [SQLSTATE " + e.Code + "]")
	return b.String()
}
