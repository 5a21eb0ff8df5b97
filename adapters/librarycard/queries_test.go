package librarycard_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/patronkittest"
)

// statements records the SQL statements run on a database while on.
type statements struct {
	mu  sync.Mutex
	on  bool
	sql []string
}

// recordStatements registers callbacks on db that record every statement
// run after each query, row, raw, create, update and delete.
func recordStatements(tb testing.TB, db *gorm.DB) *statements {
	tb.Helper()
	s := &statements{}
	rec := func(tx *gorm.DB) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.on {
			s.sql = append(s.sql, tx.Statement.SQL.String())
		}
	}
	cb := db.Callback()
	for i, err := range []error{
		cb.Query().After("*").Register("test:record", rec),
		cb.Row().After("*").Register("test:record", rec),
		cb.Raw().After("*").Register("test:record", rec),
		cb.Create().After("*").Register("test:record", rec),
		cb.Update().After("*").Register("test:record", rec),
		cb.Delete().After("*").Register("test:record", rec),
	} {
		if err != nil {
			tb.Fatalf("callback %d: %v", i, err)
		}
	}
	return s
}

// during answers the statements run while fn ran.
func (s *statements) during(fn func()) []string {
	s.mu.Lock()
	s.on, s.sql = true, nil
	s.mu.Unlock()
	fn()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on = false
	return s.sql
}

// TestPagesReadInFewStatements: the loans page of a patron with 100
// loans reads the patron's id, their loans and the items' titles: three
// statements, overdue or not (no read per loan, the libraries' time zones
// kept from the page before); the history page reads the history choice
// alone, not the whole account.
func TestPagesReadInFewStatements(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		srv := borrowers(t, k, 1, 100, nil)
		c := signedIn(t, srv.URL, "reader-1")
		rec := recordStatements(t, k.DB)
		get := func(path string) {
			res, err := c.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s: status %d", path, res.StatusCode)
			}
		}
		want := func(path string, n int) {
			t.Helper()
			sql := rec.during(func() { get(path) })
			if len(sql) > n {
				t.Errorf("%s: %d statements, want at most %d:\n%s", path, len(sql), n, strings.Join(sql, "\n"))
			}
		}
		get("/card/loans")
		want("/card/loans", 3)
		k.Clock.Advance(30 * 24 * time.Hour) // every loan overdue, with its fine
		get("/card/loans")
		want("/card/loans", 3)
		want("/card/history", 5)
	})
}
