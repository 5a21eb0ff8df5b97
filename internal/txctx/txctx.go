// Package txctx carries a database transaction in a context.Context, as
// Gitea's models/db does, so that every service call made with the context
// reads and writes through that transaction and commits or rolls back with
// the caller's own writes.
//
// Every module's service reads and writes through DB(ctx, itsDB), and opens
// its transactions with Transaction(ctx, itsDB, fn): inside a transaction
// the context carries, that is a savepoint of it (gorm's nested
// Transaction), rolled back alone when fn fails; otherwise a transaction
// of its own. Within a transaction nothing goes to the pool: on SQLite the
// transaction holds the one writer, and a write on another connection
// would wait for it forever (or for the busy timeout).
//
// Work that must only happen once the changes are committed (telling
// listeners, starting background jobs) is registered with AfterCommit: it
// runs when the outermost transaction commits, and is dropped when that
// transaction, or the savepoint it was registered in, is rolled back.
// Work registered with AfterRollback (removing a file kept for a job that
// will not run) runs in that case instead.
package txctx

import (
	"context"
	"sync"

	"gorm.io/gorm"
)

type key struct{}

// scope is one level of transaction a context carries: the outermost
// transaction or a savepoint of it, with the work to run once everything
// is committed.
type scope struct {
	tx     *gorm.DB
	parent *scope // the transaction a savepoint belongs to
	mu     sync.Mutex
	after  []func(committed bool)
	state  state
}

// state is where a scope's transaction stands.
type state int

const (
	open       state = iota
	committed        // its work ran
	rolledBack       // its work was dropped
	released         // a savepoint released: its work went to the parent
)

func from(ctx context.Context) *scope {
	s, _ := ctx.Value(key{}).(*scope)
	return s
}

// With returns a context carrying tx, a transaction that the caller opened
// and ends itself, and end, which the caller calls once tx has ended:
// end(true) after the commit runs the work registered with AfterCommit
// through the context, in order; end(false) after a rollback runs that
// registered with AfterRollback instead. Only the first call of end does
// anything. A nil tx gives ctx as it is.
func With(ctx context.Context, tx *gorm.DB) (context.Context, func(committed bool)) {
	if tx == nil {
		return ctx, func(bool) {}
	}
	s := &scope{tx: tx.Session(&gorm.Session{NewDB: true})}
	return context.WithValue(ctx, key{}, s), s.end
}

// DB is what a service reads and writes through: the transaction ctx
// carries, or fallback when it carries none; on ctx either way.
func DB(ctx context.Context, fallback *gorm.DB) *gorm.DB {
	if s := from(ctx); s != nil {
		return s.tx.WithContext(ctx)
	}
	return fallback.WithContext(ctx)
}

// In reports whether ctx carries a transaction.
func In(ctx context.Context) bool { return from(ctx) != nil }

// Without returns ctx carrying no transaction, for work that goes on after
// the call that started it (a background job, a listener told after the
// commit): its writes are its own.
func Without(ctx context.Context) context.Context {
	if from(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, key{}, (*scope)(nil))
}

// Transaction runs fn in a transaction and commits it when fn returns nil:
// a savepoint of the transaction ctx carries, or a new transaction on db
// when it carries none. fn gets a context carrying the transaction, and
// the transaction itself; when fn returns an error, what it wrote is
// rolled back (to the savepoint: the outer transaction goes on) and the
// error is returned. The work fn registered with AfterCommit runs once the
// outermost transaction commits: at the end of this call when it opened
// that transaction. That registered with AfterRollback runs when this call
// rolls back, or later the outermost transaction.
func Transaction(ctx context.Context, db *gorm.DB, fn func(ctx context.Context, tx *gorm.DB) error) error {
	outer := from(ctx)
	if outer == nil {
		db = db.WithContext(ctx)
	} else {
		db = outer.tx.WithContext(ctx)
	}
	inner := &scope{parent: outer}
	defer func() {
		if r := recover(); r != nil {
			inner.end(false) // rolled back by gorm
			panic(r)
		}
	}()
	err := db.Transaction(func(tx *gorm.DB) error {
		inner.tx = tx
		return fn(context.WithValue(ctx, key{}, inner), tx)
	})
	if err != nil {
		inner.end(false)
		return err
	}
	if outer == nil {
		inner.end(true)
		return nil
	}
	// Released into the outer transaction: its work waits for that one's
	// end.
	inner.mu.Lock()
	after := inner.after
	inner.after, inner.state = nil, released
	inner.mu.Unlock()
	for _, f := range after {
		register(outer, f)
	}
	return nil
}

// AfterCommit runs f once the transaction ctx carries has committed, with
// the outermost transaction it belongs to; never when it is rolled back.
// When ctx carries no transaction, f runs at once. f runs in the goroutine
// that ends the transaction; it is given no context: it takes its own,
// usually Without(ctx).
func AfterCommit(ctx context.Context, f func()) {
	if !register(from(ctx), func(committed bool) {
		if committed {
			f()
		}
	}) {
		f()
	}
}

// AfterRollback runs f if the transaction ctx carries is rolled back, or
// the savepoint it is in: to undo what is not in the database (a file
// kept for a job that will not run). When ctx carries no transaction, f
// never runs.
func AfterRollback(ctx context.Context, f func()) {
	register(from(ctx), func(committed bool) {
		if !committed {
			f()
		}
	})
}

// register queues f to run when s ends, or the transaction s was released
// into; when s has ended already, f runs now with how it ended. It reports
// false when there is no transaction.
func register(s *scope, f func(committed bool)) bool {
	for ; s != nil; s = s.parent {
		s.mu.Lock()
		st := s.state
		if st == open {
			s.after = append(s.after, f)
		}
		s.mu.Unlock()
		switch st {
		case open:
			return true
		case committed, rolledBack:
			f(st == committed)
			return true
		}
		// released: the savepoint's work is its transaction's
	}
	return false
}

// end ends the scope: its work runs, in order, told whether ok
// (committed). Only the first call does anything.
func (s *scope) end(ok bool) {
	s.mu.Lock()
	if s.state != open {
		s.mu.Unlock()
		return
	}
	s.state = rolledBack
	if ok {
		s.state = committed
	}
	after := s.after
	s.after = nil
	s.mu.Unlock()
	for _, f := range after {
		f(ok)
	}
}
