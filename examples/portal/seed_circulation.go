package main

import (
	"context"
	"fmt"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

// demoTitles are the works the demo's items are copies of.
var demoTitles = []struct{ title, author, material string }{
	{"The Structure of Scientific Revolutions", "Thomas S. Kuhn", "BOOK"},
	{"Introduction to Algorithms", "Cormen, Leiserson, Rivest, Stein", "BOOK"},
	{"A Brief History of Time", "Stephen Hawking", "BOOK"},
	{"The Origin of Species", "Charles Darwin", "BOOK"},
	{"Middlemarch", "George Eliot", "BOOK"},
	{"The Selfish Gene", "Richard Dawkins", "BOOK"},
	{"Gödel, Escher, Bach", "Douglas Hofstadter", "BOOK"},
	{"Cosmos", "Carl Sagan", "DVD"},
	{"The Feynman Lectures on Physics", "Richard Feynman", "BOOK"},
	{"Silent Spring", "Rachel Carson", "BOOK"},
}

// semesterEnd is the demo's end of semester: the next 20 December or
// 15 June at least a week away.
func semesterEnd(now time.Time) string {
	for _, d := range []time.Time{
		time.Date(now.Year(), time.June, 15, 0, 0, 0, 0, time.UTC),
		time.Date(now.Year(), time.December, 20, 0, 0, 0, 0, time.UTC),
		time.Date(now.Year()+1, time.June, 15, 0, 0, 0, 0, time.UTC),
	} {
		if d.After(now.AddDate(0, 0, 7)) {
			return d.Format(time.DateOnly)
		}
	}
	return now.AddDate(0, 6, 0).Format(time.DateOnly)
}

// SeedCirculation gives the demo institution its libraries MAIN and
// SCIENCE, 300 items (barcodes MAIN-0001..MAIN-0150 and SCI-0001..SCI-0150,
// copies of ten titles 9901..9910) and terms of use: undergraduates 4
// weeks, faculty to the end of semester, everyone else 3 weeks, DVDs 1
// week; requests allowed, picked up at the owning library (faculty: any,
// or delivered).
func SeedCirculation(ctx context.Context, kit *patronkit.Kit, inst string) error {
	c := kit.Circulation
	for _, l := range []circulation.Library{
		{Code: "MAIN", Name: "Main Library", TimeZone: "UTC", PickupLocations: patron.Codes{"MAIN"}},
		{Code: "SCIENCE", Name: "Science Library", TimeZone: "UTC", PickupLocations: patron.Codes{"SCIENCE"}},
	} {
		l := l
		if _, err := c.CreateLibrary(ctx, inst, &l); err != nil {
			return err
		}
	}
	var items []circulation.Item
	for _, lib := range []struct{ code, prefix string }{{"MAIN", "MAIN"}, {"SCIENCE", "SCI"}} {
		for i := 1; i <= 150; i++ {
			n := (i - 1) % len(demoTitles)
			w := demoTitles[n]
			items = append(items, circulation.Item{
				Barcode: fmt.Sprintf("%s-%04d", lib.prefix, i), Title: w.title, Author: w.author,
				Library: lib.code, Location: "STACKS", ItemPolicy: "REGULAR", MaterialType: w.material,
				TitleID: fmt.Sprintf("99%02d", n+1),
			})
		}
	}
	rep, err := c.LoadItems(ctx, inst, items)
	if err != nil {
		return err
	}
	if len(rep.Rejected) > 0 {
		return fmt.Errorf("demo items rejected: %+v", rep.Rejected[0])
	}
	weeks := func(n int) circulation.Terms {
		return circulation.Terms{LoanPeriod: n, LoanPeriodUnit: circulation.Weeks, Renewals: 2, OverdueFine: 25, OverdueFineUnit: circulation.PerDay,
			MaxFine: 1000, LostItemFee: 5000, DaysOverdueUntilLost: 60, Currency: "USD", MaxLoans: 20, RequestsAllowed: true}
	}
	faculty := weeks(0)
	faculty.LoanPeriod, faculty.LoanPeriodUnit, faculty.FixedDueDate, faculty.MaxLoans = 0, "", semesterEnd(kit.Now()), 100
	// Faculty pick requests up at any library, or have them delivered
	// for 5.00; everyone else at the library that owns the item.
	faculty.PickupAnyLibrary, faculty.PersonalDelivery, faculty.DeliveryFee = true, true, 500
	maxBalance, maxOverdue := int64(1000), 5
	dvd := weeks(1)
	dvd.Renewals = 0
	_, err = c.ReplaceRules(ctx, inst, 0, []circulation.Rule{
		{Name: "DVDs: one week", MaterialType: "DVD", Terms: dvd},
		{Name: "Undergraduates: four weeks", UserGroup: "UNDERGRAD", Terms: weeks(4)},
		{Name: "Faculty: end of semester", UserGroup: "FACULTY", Terms: faculty},
		{Name: "Everyone else: three weeks", Terms: weeks(3)},
	}, []circulation.BlockLimit{
		// Owing more than 10.00, or holding more than five overdue loans,
		// stops new loans and requests (not renewals).
		{MaxBalance: &maxBalance, Currency: "USD", MaxOverdueLoans: &maxOverdue, Stops: []string{circulation.ActionLoan, circulation.ActionRequest}},
	})

	return err
}
