package blob

import (
	"context"
	"errors"
	"io"

	"gocloud.dev/blob"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/mixer"
)

// Check looks at a blob system without writing to it
// (connectors.Checker, `remix validate --online`): every dataset's columns
// against the models, and the store reachable with the system's
// credentials (one listing under its prefix). Whether the store can be
// written is checked when a pusher opens it, with an object it writes and
// deletes.
func (s *Sink) Check(ctx context.Context, models map[string]*mixer.Model) (errs, warnings config.Errors) {
	if _, problems := layoutsOf(s.sys, models); len(problems) > 0 {
		errs = append(errs, problems...)
	}
	st, err := openStore(ctx, s.sys)
	if err != nil {
		return append(errs, problemAt(s.sys, []string{"type"}, "%v", err)), nil
	}
	defer st.bucket.Close()
	it := st.bucket.List(&blob.ListOptions{Prefix: st.prefix})
	if _, err := it.Next(ctx); err != nil && !errors.Is(err, io.EOF) {
		errs = append(errs, problemAt(s.sys, []string{"type"}, "%s cannot be listed: %v", st.where, err))
	}
	return errs, nil
}
