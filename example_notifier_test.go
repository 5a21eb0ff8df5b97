package patronkit_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

// campusMessaging is a host's own notice channel: a Notifier hands each
// message to the campus messaging service (here it prints it). An error
// leaves the notice to be tried again later.
type campusMessaging struct{}

func (campusMessaging) Notify(ctx context.Context, m circulation.Message) error {
	fmt.Printf("%s to %s: %s\n", m.Channel, m.To, m.Subject)
	return nil
}

// A host sends notices its own way: a circulation.Notifier (or a
// circulation.NotifierFunc) in Config.Email or Config.SMS;
// adapters/notify has SMTP and an HTTP SMS gateway.
func Example_customNotifier() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "patronkit-example")
	defer os.RemoveAll(dir)
	db, err := sqldb.Open(filepath.Join(dir, "library.db"))
	if err != nil {
		log.Fatal(err)
	}
	kit, err := patronkit.New(db, &patronkit.Config{
		Email:  campusMessaging{},
		Now:    func() time.Time { return time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC) },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer kit.Close()
	if err := kit.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	// A library, an item, terms of use and a patron with an email: a loan
	// writes its receipt.
	must := func(_ any, err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	must(kit.Circulation.CreateLibrary(ctx, "MYUNI", &circulation.Library{Code: "MAIN", Name: "Main Library"}))
	must(kit.Circulation.CreateItem(ctx, "MYUNI", &circulation.Item{Barcode: "B1", Title: "Middlemarch", Library: "MAIN"}))
	must(kit.Circulation.ReplaceRules(ctx, "MYUNI", 0, []circulation.Rule{{Terms: circulation.Terms{LoanPeriod: 3, LoanPeriodUnit: circulation.Weeks}}}, nil))
	must(kit.Patrons.Create(ctx, "MYUNI", &patron.User{PrimaryID: "ada", FirstName: "Ada", LastName: "Lovelace",
		Emails: []patron.Email{{EmailAddress: "ada@campus.example", Preferred: true}}}))
	must(kit.Circulation.CheckOut(ctx, "MYUNI", "ada", "B1", circulation.CheckOutOptions{}))

	// kit.Start sends pending notices every Config.CirculationEvery; here, at once.
	n, err := kit.Circulation.SendNotices(ctx)
	fmt.Println(n, "sent", err)
	// Output:
	// email to ada@campus.example: Loan receipt: Middlemarch
	// 1 sent <nil>
}
