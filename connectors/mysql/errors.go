package mysql

import (
	"errors"
	"fmt"

	"github.com/sqlpipe/remix/connectors"
)

var (
	// ErrBinlogGone means the binary log a source must resume from is no
	// longer on the server (purged by binlog_expire_logs_seconds,
	// expire_logs_days or PURGE BINARY LOGS): the changes made since are
	// lost to it.
	ErrBinlogGone = fmt.Errorf("binary log purged: %w", connectors.ErrPositionLost)
	// ErrServerSetup means the server is not set up for a source: a binary
	// log setting, a privilege, or a server_id another replica uses.
	ErrServerSetup = errors.New("server not set up for replication")
	// ErrDSN means the dsn cannot be read.
	ErrDSN = errors.New("dsn")
)
