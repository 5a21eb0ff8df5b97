package ginapi_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/apikeys"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/privacy"
)

// A user administrator makes a key acting as a STAFF user: its secret is
// answered once, only its hash is stored, the list never shows it; a
// revoked key, and one past its expiry, stop working; other staff may not
// manage keys; a key for a patron or without a name is refused, naming
// the field, and nothing is made.
func TestAPIKeysAreMadeOnceListedAndRevoked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		now := testNow
		s := newServer(t, db, &patronkit.Config{Now: func() time.Time { return now }})
		s.create("UNI", &patron.User{PrimaryID: "boss", FirstName: "B", LastName: "Boss", RecordType: patron.RecordStaff})
		s.create("UNI", &patron.User{PrimaryID: "idm", FirstName: "I", LastName: "Connector", RecordType: patron.RecordStaff})
		s.create("UNI", &patron.User{PrimaryID: "pat", FirstName: "P", LastName: "Patron"})
		s.grant("UNI", "boss", "user-administrator", "*")
		s.grant("UNI", "desk", "circulation-desk-operator", "*")
		const boss = "UNI/boss/staff"

		for name, c := range map[string]struct {
			body  string
			field string
		}{
			"a patron":        {`{"name":"x","staff_id":"pat"}`, "staff_id"},
			"nobody":          {`{"name":"x","staff_id":"ghost"}`, "staff_id"},
			"no name":         {`{"name":" ","staff_id":"idm"}`, "name"},
			"expired at once": {`{"name":"x","staff_id":"idm","expires_at":"2026-09-01T08:00:00Z"}`, "expires_at"},
		} {
			s.do(boss, http.MethodPost, "/api/api-keys", c.body).refused(t, name, http.StatusUnprocessableEntity, c.field)
		}
		s.do("UNI/desk/staff", http.MethodPost, "/api/api-keys", `{"name":"x","staff_id":"idm"}`).refused(t, "desk", http.StatusForbidden, "")
		s.do("UNI/pat/patron", http.MethodGet, "/api/api-keys", nil).refused(t, "patron", http.StatusForbidden, "")
		var n int64
		if err := db.Table("pk_api_keys").Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("refused keys left %d rows (%v)", n, err)
		}

		var made apikeys.Made
		r := s.do(boss, http.MethodPost, "/api/api-keys", `{"name":"IdM connector","staff_id":"IDM","read_only":true,"expires_at":"2026-10-01T00:00:00Z"}`).status(http.StatusCreated)
		r.json(&made)
		if !strings.HasPrefix(made.Secret, "pkak_") || len(made.Secret) < 40 || made.StaffID != "idm" || !made.ReadOnly || made.CreatedBy != "boss" ||
			made.ExpiresAt == nil || !made.ExpiresAt.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("made %+v", made)
		}
		if r.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("the secret may be cached: %q", r.Header().Get("Cache-Control"))
		}
		var stored []map[string]any
		if err := db.Table("pk_api_keys").Find(&stored).Error; err != nil {
			t.Fatal(err)
		}
		for _, row := range stored {
			for col, v := range row {
				if s, ok := v.(string); ok && strings.Contains(s, made.Secret[5:]) {
					t.Errorf("column %s holds the secret", col)
				}
			}
		}
		list := s.do(boss, http.MethodGet, "/api/api-keys", nil).status(http.StatusOK)
		if strings.Contains(list.Body.String(), made.Secret) || !strings.Contains(list.Body.String(), `"prefix":"`+made.Secret[:12]+`"`) {
			t.Errorf("the list: %s", list.Body)
		}

		ctx := context.Background()
		if k, err := s.kit.APIKeys.Authenticate(ctx, made.Secret); err != nil || k.StaffID != "idm" || k.Institution != "UNI" {
			t.Fatalf("the new key: %+v, %v", k, err)
		}
		if _, err := s.kit.APIKeys.Authenticate(ctx, made.Secret+"x"); !errors.Is(err, apikeys.ErrUnknown) {
			t.Errorf("a wrong secret: %v", err)
		}
		now = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
		if _, err := s.kit.APIKeys.Authenticate(ctx, made.Secret); !errors.Is(err, apikeys.ErrExpired) {
			t.Errorf("past its expiry: %v", err)
		}
		now = testNow

		s.do("OTHER/boss/staff", http.MethodDelete, "/api/api-keys/"+made.ID, nil).refused(t, "another institution", http.StatusForbidden, "")
		s.grant("OTHER", "boss", "user-administrator", "*")
		s.do("OTHER/boss/staff", http.MethodDelete, "/api/api-keys/"+made.ID, nil).refused(t, "another institution's key", http.StatusNotFound, "")
		s.do(boss, http.MethodDelete, "/api/api-keys/"+made.ID, nil).status(http.StatusNoContent)
		s.do(boss, http.MethodDelete, "/api/api-keys/"+made.ID, nil).status(http.StatusNoContent)
		if _, err := s.kit.APIKeys.Authenticate(ctx, made.Secret); !errors.Is(err, apikeys.ErrRevoked) {
			t.Errorf("revoked: %v", err)
		}
		// Making and revoking (once) are on the trail, about the staff
		// user the key acts as, by the administrator; never the secret.
		page, err := s.kit.Privacy.Search(ctx, "UNI", privacy.Query{Subject: "idm"})
		if err != nil {
			t.Fatal(err)
		}
		var events []string
		for _, e := range page.Entries {
			if e.What != apikeys.AuditWhat {
				continue
			}
			if e.ActorID != "boss" || !strings.Contains(e.Details, made.ID) || strings.Contains(e.Details, made.Secret[5:]) {
				t.Errorf("the entry %+v", e)
			}
			for _, ev := range []string{"made", "revoked"} {
				if strings.Contains(e.Details, `"event":"`+ev+`"`) {
					events = append(events, ev)
				}
			}
		}
		if strings.Join(events, ",") != "revoked,made" {
			t.Errorf("the trail's entries about the key: %v", events)
		}
	})
}

// A key is a credential of the staff user it acts as: a role that may
// manage keys but not STAFF records (users.staff) makes keys acting as
// its own user only.
func TestAKeyForAnotherStaffUserNeedsUsersStaff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		policy := filepath.Join(t.TempDir(), "policy.csv")
		if err := os.WriteFile(policy, []byte(casbinmodel.DefaultPolicy()+"\np, key-keeper, *, api_keys.manage, *\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		model := filepath.Join(t.TempDir(), "model.conf")
		if err := os.WriteFile(model, []byte(casbinmodel.DefaultModel()), 0o600); err != nil {
			t.Fatal(err)
		}
		s := newServer(t, db, &patronkit.Config{Policies: casbinmodel.FromFiles(model, policy)})
		s.create("UNI", &patron.User{PrimaryID: "keeper", FirstName: "K", LastName: "Keeper", RecordType: patron.RecordStaff})
		s.create("UNI", &patron.User{PrimaryID: "boss", FirstName: "B", LastName: "Boss", RecordType: patron.RecordStaff})
		s.grant("UNI", "keeper", "key-keeper", "*")
		s.grant("UNI", "boss", "user-administrator", "*")
		s.do("UNI/keeper/staff", http.MethodPost, "/api/api-keys", `{"name":"escalate","staff_id":"boss"}`).refused(t, "a key acting as the boss", http.StatusForbidden, "")
		s.do("UNI/keeper/staff", http.MethodPost, "/api/api-keys", `{"name":"mine","staff_id":"KEEPER"}`).status(http.StatusCreated)
		s.do("UNI/boss/staff", http.MethodPost, "/api/api-keys", `{"name":"for keeper","staff_id":"keeper"}`).status(http.StatusCreated)
		var n int64
		if err := db.Table("pk_api_keys").Where("staff_id = ?", "boss").Count(&n).Error; err != nil || n != 0 {
			t.Errorf("a refused key was made (%d, %v)", n, err)
		}
	})
}
