package patronkit_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// Enrolment is a table of the host's own, in the kit's database.
type Enrolment struct {
	ID     uint
	UserID string
	Course string
}

// A host creates a patron and a row of its own in one transaction: both
// are kept, or neither.
func ExampleKit_InTx() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "patronkit-example")
	defer os.RemoveAll(dir)
	db, err := sqldb.Open(filepath.Join(dir, "library.db"))
	if err != nil {
		log.Fatal(err)
	}
	kit, err := patronkit.New(db, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := kit.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&Enrolment{}); err != nil {
		log.Fatal(err)
	}

	enrol := func(primaryID string, fail bool) error {
		return kit.InTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
			u, err := kit.Patrons.Create(ctx, "MYUNI", &patron.User{PrimaryID: primaryID, FirstName: "Jane", LastName: "Doe"})
			if err != nil {
				return err
			}
			if err := tx.Create(&Enrolment{UserID: u.ID, Course: "BIO-101"}).Error; err != nil {
				return err
			}
			if fail {
				return errors.New("the course is full")
			}
			return nil
		})
	}
	fmt.Println(enrol("jdoe", false))
	fmt.Println(enrol("asmith", true))

	_, err = kit.Patrons.Get(ctx, "MYUNI", "asmith")
	var enrolments int64
	db.Model(&Enrolment{}).Count(&enrolments)
	fmt.Println(errors.Is(err, fault.ErrNotFound), enrolments)
	// Output:
	// <nil>
	// the course is full
	// true 1
}
