package main

import (
	"context"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// demoStaff are the staff accounts of the demo, with their roles.
var demoStaff = []struct {
	user          patron.User
	role, library string
}{
	{patron.User{PrimaryID: "librarian", FirstName: "Lena", LastName: "Librarian", RecordType: patron.RecordStaff, UserGroup: "STAFF", PINNumber: "1111",
		Emails: []patron.Email{{EmailAddress: "librarian@demo.example", Preferred: true, EmailTypes: patron.Codes{"work"}}}},
		"user-administrator", "*"},
	{patron.User{PrimaryID: "desk", FirstName: "Dana", LastName: "Desk", RecordType: patron.RecordStaff, UserGroup: "STAFF", PINNumber: "2222",
		Emails: []patron.Email{{EmailAddress: "desk@demo.example", Preferred: true, EmailTypes: patron.Codes{"work"}}}},
		"circulation-desk-operator", "MAIN"},
	{patron.User{PrimaryID: "circ-admin", FirstName: "Cleo", LastName: "Circulation", RecordType: patron.RecordStaff, UserGroup: "STAFF", PINNumber: "8888",
		Emails: []patron.Email{{EmailAddress: "circ-admin@demo.example", Preferred: true, EmailTypes: patron.Codes{"work"}}}},
		"fulfillment-administrator", "*"},
	{patron.User{PrimaryID: "auditor", FirstName: "Audrey", LastName: "Auditor", RecordType: patron.RecordStaff, UserGroup: "STAFF", PINNumber: "9999",
		Emails: []patron.Email{{EmailAddress: "auditor@demo.example", Preferred: true, EmailTypes: patron.Codes{"work"}}}},
		"auditor", "*"},
	// The self-check kiosk signs in over SIP2 (-sip2): it lends, takes
	// back and renews at MAIN as the desk does.
	{patron.User{PrimaryID: "kiosk", FirstName: "Self-check", LastName: "Kiosk", RecordType: patron.RecordStaff, UserGroup: "STAFF", PINNumber: "6001"},
		"circulation-desk-operator", "MAIN"},
}

// demoPatrons are the patrons of the demo, with varied segments.
var demoPatrons = []patron.User{
	{PrimaryID: "student1", FirstName: "Sam", LastName: "Student", UserGroup: "UNDERGRAD", CampusCode: "MAIN", PreferredLanguage: "en", PINNumber: "3333",
		ExpiryDate:  "2030-06-30",
		Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "S0001"}},
		Emails:      []patron.Email{{EmailAddress: "sam.student@demo.example", Preferred: true, EmailTypes: patron.Codes{"personal"}}},
		Phones:      []patron.Phone{{PhoneNumber: "+15550001", Preferred: true, PreferredSMS: true, PhoneTypes: patron.Codes{"mobile"}}},
		Addresses:   []patron.Address{{Line1: "1 College Road", City: "Springfield", PostalCode: "12345", Country: "USA", Preferred: true, AddressTypes: patron.Codes{"home"}}},
		Notes: []patron.Note{
			{NoteType: "CIRCULATION", NoteText: "Welcome to the library!", UserViewable: true},
			{NoteType: "OTHER", NoteText: "Asked about interlibrary loan rules twice.", UserViewable: false},
		},
		Statistics: []patron.Statistic{{StatisticCategory: "FIRSTYEAR", CategoryType: "LEVEL"}},
	},
	{PrimaryID: "faculty1", FirstName: "Frances", LastName: "Faculty", UserGroup: "FACULTY", JobCategory: "Professor", CampusCode: "MAIN", PreferredLanguage: "es", PINNumber: "4444",
		ExpiryDate:  "2031-12-31",
		Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "F0001"}},
		Emails:      []patron.Email{{EmailAddress: "frances.faculty@demo.example", Preferred: true, EmailTypes: patron.Codes{"work"}}},
		Addresses:   []patron.Address{{Line1: "Science Building, Room 201", City: "Springfield", Preferred: true, AddressTypes: patron.Codes{"work"}}},
	},
	{PrimaryID: "grad1", FirstName: "Gia", LastName: "Graduate", UserGroup: "GRAD", PINNumber: "5555", ExpiryDate: "2029-09-30",
		Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "G0001"}, {IDType: "UNIV_ID", Value: "U-1001"}},
		Emails: []patron.Email{
			{EmailAddress: "gia@demo.example", EmailTypes: patron.Codes{"personal"}},
			{EmailAddress: "g.graduate@uni.example", EmailTypes: patron.Codes{"school"}},
		},
		Blocks: []patron.Block{{BlockType: "GENERAL", BlockDescription: "LOST_CARD", BlockNote: "Reported the card lost; issue a new one at the desk."}},
	},
	{PrimaryID: "sis-student", FirstName: "Sol", LastName: "Synced", UserGroup: "UNDERGRAD", AccountType: patron.AccountExternal, ExternalID: "SIS",
		PINNumber: "6666", ExpiryDate: "2027-08-31",
		Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "S0002"}},
		Emails:      []patron.Email{{EmailAddress: "sol@demo.example", Preferred: true}},
	},
	{PrimaryID: "alumnus1", FirstName: "Alex", LastName: "Alumnus", UserGroup: "ALUMNI", Status: patron.StatusInactive, ExpiryDate: "2024-06-30", PurgeDate: "2026-06-30",
		Phones: []patron.Phone{{PhoneNumber: "+15550009", PhoneTypes: patron.Codes{"home"}}},
	},
	{PrimaryID: "visitor1", FirstName: "Vera", LastName: "Visitor", UserGroup: "PUBLIC", RecordType: patron.RecordContact, PINNumber: "7777",
		Emails: []patron.Email{{EmailAddress: "vera@visitor.example", Preferred: true}},
		Notes:  []patron.Note{{NoteType: "REGISTAR", NoteText: "Community borrower; renew the card yearly.", UserViewable: true, PopupNote: true}},
	},
}

// Seed fills an institution with the demo accounts when it has no users
// yet, and reports whether it did.
func Seed(ctx context.Context, kit *patronkit.Kit, inst string) (bool, error) {
	page, err := kit.Patrons.List(ctx, inst, patron.Query{Limit: 1})
	if err != nil {
		return false, err
	}
	if page.TotalRecordCount > 0 {
		return false, nil
	}
	ctx = patron.WithActor(ctx, patron.Actor{Institution: inst, ID: "system:seed"})
	for _, s := range demoStaff {
		u := s.user
		if _, err := kit.Patrons.Create(ctx, inst, &u); err != nil {
			return false, err
		}
	}
	for _, p := range demoPatrons {
		u := p
		if _, err := kit.Patrons.Create(ctx, inst, &u); err != nil {
			return false, err
		}
	}
	if err := SeedCirculation(ctx, kit, inst); err != nil {
		return false, err
	}
	// The staff's roles, once their libraries exist, as a user
	// administrator gives them (PUT /api/users/{primary_id}/user_roles).
	anywhere := func(string) (bool, error) { return true, nil } // the seed acts for the operator
	for _, s := range demoStaff {
		roles := []casbinmodel.UserRole{{RoleType: s.role, Scope: s.library}}
		if _, err := kit.Roles.Replace(ctx, inst, s.user.PrimaryID, "", roles, anywhere); err != nil {
			return false, err
		}
	}
	// The campus SIS: its files land in the drop folder, twice a day.
	_, err = kit.SIS.CreateProfile(ctx, inst, &sis.Profile{
		Code: "SIS", Description: "Campus student information system", Source: DropFolder,
		Mode: sis.ModeSynchronize, MatchBy: sis.MatchPrimaryID, Unmatched: sis.UnmatchedAdd,
		Schedule: "0 6,18 * * *", TimeZone: "UTC",
	})
	return err == nil, err
}
