package almaapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// A call without a key, with an unknown one, a revoked one or one past its
// expiry gets Alma's 401 body (in the format asked); a read-only key reads
// but may not write; a key whose user's roles do not allow a call gets
// Alma's 401 too.
func TestAKeyMissingRevokedOrExpiredGetsAlmasUnauthorized(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID = "jdoe" })
		want(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe?format=json", ""), http.StatusOK)
		want(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe?apikey="+s.key, "", "Authorization", ""), http.StatusOK)

		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe", "", "Authorization", "", "Accept", "application/json"), http.StatusUnauthorized, "UNAUTHORIZED")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe", "", "Authorization", "apikey nonsense"), http.StatusUnauthorized, "UNAUTHORIZED")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe?format=xml", "", "Authorization", "apikey nonsense"), http.StatusUnauthorized, "UNAUTHORIZED")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/nobody", "", "Authorization", "", "Accept", "application/json"), http.StatusUnauthorized, "UNAUTHORIZED")

		// Read-only: GET yes, DELETE no (and nothing deleted).
		ro := s.makeKey("reader", "api", true)
		want(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe", "", "Authorization", "apikey "+ro), http.StatusOK)
		if msg := almaErr(t, s.do(http.MethodDelete, "/almaws/v1/users/jdoe?format=json", "", "Authorization", "apikey "+ro), http.StatusUnauthorized, "UNAUTHORIZED"); !strings.Contains(msg, "read-only") {
			t.Errorf("the refusal of a read-only key: %q", msg)
		}
		want(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe", "", "Authorization", "apikey "+ro), http.StatusOK)

		// A key acting as staff without roles: its user's roles decide.
		patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID, u.RecordType = "nobody-staff", patron.RecordStaff })
		bare := s.makeKey("bare", "nobody-staff", false)
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe?format=json", "", "Authorization", "apikey "+bare), http.StatusUnauthorized, "UNAUTHORIZED")

		// Revoked through the native API.
		var list struct {
			Keys []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"api_keys"`
		}
		w := want(t, s.do(http.MethodGet, "/api/api-keys", "", "X-Test-Who", "UNI/api/staff"), http.StatusOK)
		if err := jsonUnmarshal(w.Body.Bytes(), &list); err != nil {
			t.Fatal(err)
		}
		for _, key := range list.Keys {
			if key.Name == "reader" {
				want(t, s.do(http.MethodDelete, "/api/api-keys/"+key.ID, "", "X-Test-Who", "UNI/api/staff"), http.StatusNoContent)
			}
		}
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe?format=json", "", "Authorization", "apikey "+ro), http.StatusUnauthorized, "UNAUTHORIZED")

		// Expired: the clock passes the expiry of a key made with one.
		w = want(t, s.do(http.MethodPost, "/api/api-keys", `{"name":"short","staff_id":"api","expires_at":"2026-09-02T00:00:00Z"}`,
			"X-Test-Who", "UNI/api/staff", "Content-Type", "application/json"), http.StatusCreated)
		var made struct {
			Secret string `json:"secret"`
		}
		if err := jsonUnmarshal(w.Body.Bytes(), &made); err != nil {
			t.Fatal(err)
		}
		want(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe", "", "Authorization", "apikey "+made.Secret), http.StatusOK)
		k.Clock.Set(time.Date(2026, 9, 2, 0, 0, 0, 0, time.UTC))
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe?format=json", "", "Authorization", "apikey "+made.Secret), http.StatusUnauthorized, "UNAUTHORIZED")
	})
}
