package almaapi_test

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
	"github.com/patronkit/patronkit/patronkittest"
)

// BenchmarkGetUser measures GET /almaws/v1/users/{user_id} (full view, in
// JSON and in XML) beside the native GET /api/users/{primary_id} of the
// same users (ten segments each) on the same kit, each through its whole
// chain (key or principal, access decision, audit, logging), and reports
// the median and 95th percentile.
func BenchmarkGetUser(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		k := patronkittest.On(b, db)
		s := newServer(b, k)
		for i := 0; i < 100; i++ {
			patronkittest.User(b, k, inst, func(u *patron.User) {
				*u = patron.User{
					PrimaryID: fmt.Sprintf("u%d", i), FirstName: "Bench", LastName: "Mark", UserGroup: "UG",
					Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: fmt.Sprintf("B%d", i)}, {IDType: "UNIV_ID", Value: fmt.Sprintf("U%d", i)}},
					Addresses:   []patron.Address{{Line1: "1 Main St", Preferred: true}},
					Emails:      []patron.Email{{EmailAddress: fmt.Sprintf("u%d@uni.example", i), Preferred: true}, {EmailAddress: fmt.Sprintf("u%d@home.example", i)}},
					Phones:      []patron.Phone{{PhoneNumber: "+4712345678", Preferred: true}},
					Notes:       []patron.Note{{NoteText: "public", UserViewable: true}, {NoteText: "internal"}},
					Blocks:      []patron.Block{{BlockType: "GENERAL", BlockDescription: "LOST_CARD"}},
					Statistics:  []patron.Statistic{{StatisticCategory: "FIRSTYEAR"}},
				}
			})
		}
		for _, c := range []struct {
			name, path string
			headers    []string
		}{
			{"native", "/api/users/u%d", []string{"X-Test-Who", "UNI/api/staff"}},
			{"alma-json", "/almaws/v1/users/u%d", []string{"Authorization", "apikey " + s.key, "Accept", "application/json"}},
			{"alma-xml", "/almaws/v1/users/u%d", []string{"Authorization", "apikey " + s.key, "Accept", "application/xml"}},
		} {
			b.Run(c.name, func(b *testing.B) {
				var lat []time.Duration
				for i := 0; b.Loop(); i++ {
					req := httptest.NewRequest(http.MethodGet, fmt.Sprintf(c.path, i%100), nil)
					for j := 0; j+1 < len(c.headers); j += 2 {
						req.Header.Set(c.headers[j], c.headers[j+1])
					}
					w := httptest.NewRecorder()
					start := time.Now()
					s.r.ServeHTTP(w, req)
					lat = append(lat, time.Since(start))
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body.String())
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
			})
		}
	})
}
