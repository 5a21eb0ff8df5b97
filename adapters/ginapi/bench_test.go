package ginapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// BenchmarkGetUserThroughRouter measures GET /users/{primary_id} of a user
// with ten segments through the whole middleware chain (principal, access
// decision, audit, logging) and reports the median and 95th percentile.
func BenchmarkGetUserThroughRouter(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		s := newServer(b, db, nil)
		s.grant("DEMO", "librarian", "user-administrator", "*")
		for i := 0; i < 100; i++ {
			s.create("DEMO", &patron.User{
				PrimaryID: fmt.Sprintf("u%d", i), FirstName: "Bench", LastName: "Mark",
				Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: fmt.Sprintf("B%d", i)}, {IDType: "UNIV_ID", Value: fmt.Sprintf("U%d", i)}},
				Addresses:   []patron.Address{{Line1: "1 Main St", Preferred: true}},
				Emails:      []patron.Email{{EmailAddress: fmt.Sprintf("u%d@uni.example", i), Preferred: true}, {EmailAddress: fmt.Sprintf("u%d@home.example", i)}},
				Phones:      []patron.Phone{{PhoneNumber: "+4712345678", Preferred: true}},
				Notes:       []patron.Note{{NoteText: "public", UserViewable: true}, {NoteText: "internal"}},
				Blocks:      []patron.Block{{BlockType: "GENERAL", BlockDescription: "LOST_CARD"}},
				Statistics:  []patron.Statistic{{StatisticCategory: "FIRSTYEAR"}},
			})
		}
		var lat []time.Duration
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/users/u%d", i%100), nil)
			req.Header.Set("X-Test-Who", admin)
			w := httptest.NewRecorder()
			start := time.Now()
			s.r.ServeHTTP(w, req)
			lat = append(lat, time.Since(start))
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body.String())
			}
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
	})
}
