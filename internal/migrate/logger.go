package migrate

import (
	"context"
	"log/slog"

	"gorm.io/gorm"
)

type loggerKey struct{}

// WithLogger returns a context whose migrations log through l: Run passes
// its context to every migration's transaction.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// Logger is the logger of the context tx carries (see WithLogger), or
// slog.Default(): what a migration tells the operator (a policy line it
// could not carry over, say) goes there.
func Logger(tx *gorm.DB) *slog.Logger {
	if tx != nil && tx.Statement != nil && tx.Statement.Context != nil {
		if l, ok := tx.Statement.Context.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
			return l
		}
	}
	return slog.Default()
}
