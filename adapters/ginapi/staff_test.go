package ginapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
)

// Creating a STAFF record, making a record STAFF or no longer STAFF,
// setting a STAFF record's PIN and changing its primary_id (which holds
// its roles) are a user administrator's: desk operators
// and user managers, who may create (and managers replace) other users,
// get 403 saying why, and nothing changes.
func TestOnlyUserAdministratorsMakeStaffRecords(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, nil)
		s.grant("DEMO", "librarian", "user-administrator", "*")
		s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
		s.grant("DEMO", "manager", "user-manager", "SCIENCE")
		const manager = "DEMO/manager/staff"
		staff := func(id string) map[string]any {
			return map[string]any{"primary_id": id, "first_name": "S", "last_name": "Taff", "record_type": "STAFF", "pin_number": "1111"}
		}
		forbidden := func(res response, name, says string) {
			t.Helper()
			res.refused(t, name, http.StatusForbidden, "")
			if res.Code == http.StatusForbidden && !strings.Contains(res.problem().Detail, says) {
				t.Errorf("%s: the problem does not say why: %s", name, res.Body.String())
			}
		}

		forbidden(s.do(deskStaff, "POST", "/api/users", staff("st1")), "a desk creating a STAFF record", "create a STAFF record")
		lower := staff("st1")
		lower["record_type"] = " staff"
		forbidden(s.do(deskStaff, "POST", "/api/users", lower), "a desk creating a staff record (any case)", "create a STAFF record")
		forbidden(s.do(manager, "POST", "/api/users", staff("st1")), "a manager creating a STAFF record", "create a STAFF record")
		ext := staff("st1")
		ext["account_type"], ext["external_id"] = "EXTERNAL", "SIS"
		forbidden(s.do(deskStaff, "POST", "/api/users", ext), "a desk registering a STAFF record for the SIS", "create a STAFF record")
		if n := userCount(s); n != 0 {
			t.Fatalf("refused creations wrote %d users", n)
		}
		s.do(deskStaff, "POST", "/api/users", map[string]any{"primary_id": "p1", "first_name": "P", "last_name": "One", "pin_number": "2222"}).
			status(http.StatusCreated)
		s.do(admin, "POST", "/api/users", staff("st1")).status(http.StatusCreated)

		put := func(who, id string, version int, body map[string]any) response {
			return s.do(who, "PUT", "/api/users/"+id, body, "If-Match", strconv.Quote(strconv.Itoa(version)))
		}
		public := map[string]any{"primary_id": "p1", "first_name": "P", "last_name": "One", "record_type": "STAFF"}
		forbidden(put(manager, "p1", 1, public), "a manager making a record STAFF", "make a record STAFF")
		forbidden(put(deskStaff, "p1", 1, public), "a desk making a record STAFF", "")
		pin := map[string]any{"primary_id": "st1", "first_name": "S", "last_name": "Taff", "pin_number": "9999"}
		forbidden(put(manager, "st1", 1, pin), "a manager setting a staff record's PIN", "set the PIN of a STAFF record")
		demote := map[string]any{"primary_id": "st1", "first_name": "S", "last_name": "Taff", "record_type": "public"}
		forbidden(put(manager, "st1", 1, demote), "a manager making a STAFF record PUBLIC", "make a STAFF record PUBLIC")
		rename := map[string]any{"primary_id": "st2", "first_name": "S", "last_name": "Taff"}
		forbidden(put(manager, "st1", 1, rename), "a manager renaming a STAFF record", "change the primary_id of a STAFF record")
		rename["primary_id"] = "ST1"
		forbidden(put(manager, "st1", 1, rename), "a manager changing the case of a STAFF record's primary_id", "change the primary_id")
		// A stale version is the replacement's own 412.
		put(manager, "st1", 7, pin).refused(t, "a stale replacement", http.StatusPreconditionFailed, "")

		ctx := context.Background()
		if _, err := s.kit.Patrons.SignIn(ctx, "DEMO", "st1", "1111", "127.0.0.1"); err != nil {
			t.Fatalf("the staff record's PIN changed: %v", err)
		}
		for _, id := range []string{"p1", "st1"} {
			u, err := s.kit.Patrons.Get(ctx, "DEMO", id)
			if err != nil || u.Version != 1 {
				t.Fatalf("%s changed: %+v %v", id, u, err)
			}
		}

		// What stays a manager's: a staff record's other fields, a
		// patron's PIN.
		put(manager, "st1", 1, map[string]any{"primary_id": "st1", "first_name": "Stef", "last_name": "Taff", "record_type": "STAFF"}).status(http.StatusOK)
		put(manager, "p1", 1, map[string]any{"primary_id": "p1", "first_name": "P", "last_name": "One", "pin_number": "3333"}).status(http.StatusOK)
		put(manager, "ST1", 2, map[string]any{"primary_id": "st1", "first_name": "Stef", "last_name": "Taff"}).status(http.StatusOK)
		// And the user administrator's.
		put(admin, "p1", 2, public).status(http.StatusOK)
		put(admin, "st1", 3, map[string]any{"primary_id": "st1", "first_name": "Stef", "last_name": "Taff", "pin_number": "4444"}).status(http.StatusOK)
		if _, err := s.kit.Patrons.SignIn(ctx, "DEMO", "st1", "4444", "127.0.0.1"); err != nil {
			t.Fatalf("the administrator's PIN did not take: %v", err)
		}
		put(admin, "p1", 3, map[string]any{"primary_id": "p1", "first_name": "P", "last_name": "One", "record_type": "PUBLIC"}).status(http.StatusOK)

		// A patron sets no PIN through their settings.
		s.do("DEMO/st1/patron", "PATCH", "/api/me/settings", map[string]any{"pin_number": "5555"}).
			refused(t, "a PIN through the settings", http.StatusUnprocessableEntity, "pin_number")
	})
}
