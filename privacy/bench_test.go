package privacy_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
	"github.com/patronkit/patronkit/privacy"
)

// benchReaders is how many calls record their reads at once in the
// benchmarks: the requests of a busy instance.
const benchReaders = 256

func benchTrail(b *testing.B, db *gorm.DB) *privacy.Service {
	b.Helper()
	if err := migrate.Run(context.Background(), db, privacy.Migrations()); err != nil {
		b.Fatal(err)
	}
	s, err := privacy.NewService(db, privacy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

// fill records n reads from benchReaders callers at once, each waiting
// for its entry as a read does.
func fill(b *testing.B, s *privacy.Service, n int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, benchReaders)
	at := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	for r := range benchReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; i < n; i += benchReaders {
				e := privacy.Entry{Institution: "UNI", AtUS: at.Add(time.Duration(i) * time.Millisecond).UnixMicro(),
					ActorID: "librarian", ActorKind: privacy.ActorStaff, Action: "read", Subject: fmt.Sprintf("patron-%d", i%5000),
					What: "user", Via: "http GET /users/:primary_id", RequestID: fmt.Sprintf("req-%d", i)}
				if err := s.Record(context.Background(), e); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkTrailWrite records b.N reads of concurrent callers. The
// figure of the README: go test -run '^$' -bench TrailWrite
// -benchtime 1000000x ./privacy
func BenchmarkTrailWrite(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		s := benchTrail(b, db)
		b.ResetTimer()
		fill(b, s, b.N)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
}

// BenchmarkTrailVerify verifies a chain of b.N entries. The figure of the
// README: go test -run '^$' -bench TrailVerify -benchtime 1000000x
// ./privacy
func BenchmarkTrailVerify(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		s := benchTrail(b, db)
		fill(b, s, b.N)
		b.ResetTimer()
		br, err := s.Verify(context.Background(), "UNI")
		if err != nil || br != nil {
			b.Fatal(br, err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
}
