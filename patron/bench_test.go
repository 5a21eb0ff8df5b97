package patron_test

import (
	"context"
	"fmt"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
	"github.com/patronkit/patronkit/patron"
)

// tenSegments is a user with ten segments: two identifiers, an address,
// two emails, a phone, two notes, a block and a statistic.
func tenSegments(id string) *patron.User {
	return &patron.User{
		PrimaryID: id, FirstName: "Bench", LastName: "Mark", UserGroup: "UNDERGRAD",
		Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "B-" + id}, {IDType: "UNIV_ID", Value: "U-" + id}},
		Addresses:   []patron.Address{{Line1: "1 Main St", City: "Oslo", Preferred: true}},
		Emails:      []patron.Email{{EmailAddress: id + "@uni.example", Preferred: true}, {EmailAddress: id + "@home.example"}},
		Phones:      []patron.Phone{{PhoneNumber: "+4712345678", Preferred: true}},
		Notes:       []patron.Note{{NoteText: "public", UserViewable: true}, {NoteText: "internal"}},
		Blocks:      []patron.Block{{BlockType: "GENERAL", BlockDescription: "LOST_CARD"}},
		Statistics:  []patron.Statistic{{StatisticCategory: "FIRSTYEAR"}},
	}
}

func benchService(b *testing.B, db *gorm.DB) *patron.Service {
	b.Helper()
	if err := migrate.Run(context.Background(), db, patron.Migrations()); err != nil {
		b.Fatal(err)
	}
	svc, err := patron.NewService(db, patron.Options{PINCost: bcrypt.MinCost})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

func BenchmarkCreate(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		svc := benchService(b, db)
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := svc.Create(ctx, "UNI", tenSegments(fmt.Sprintf("u%d", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGet(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		svc := benchService(b, db)
		ctx := context.Background()
		for i := 0; i < 100; i++ {
			if _, err := svc.Create(ctx, "UNI", tenSegments(fmt.Sprintf("u%d", i))); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			u, err := svc.Get(ctx, "UNI", fmt.Sprintf("u%d", i%100))
			if err != nil || len(u.Identifiers) != 2 {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkReplace(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		svc := benchService(b, db)
		ctx := context.Background()
		u, err := svc.Create(ctx, "UNI", tenSegments("u1"))
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			u.JobDescription = fmt.Sprintf("job %d", i)
			if u, err = svc.Replace(ctx, "UNI", "u1", u.Version, u); err != nil {
				b.Fatal(err)
			}
		}
	})
}
