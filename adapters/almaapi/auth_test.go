package almaapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// Alma's POST /users/{user_id}?op=auth checks a user's PIN, sent as
// password= or URL-encoded in Exl-User-Pw, with a read-only key too: 204
// when it matches; Alma's 401866 for a wrong one, an inactive account and
// an account locked by the sign-in's lockout (with Retry-After), which
// ends when the lockout does; op=refresh is Alma's unsupported operation.
func TestAUsersPINIsAuthenticatedAsAlmaDoesWithTheSignInsLockout(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		patronkittest.User(t, k, inst, func(u *patron.User) {
			u.PrimaryID, u.PINNumber = "reader", "a b%c+7"
			u.Identifiers = []patron.Identifier{{IDType: "BARCODE", Value: "BC-9"}}
		})
		patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID, u.PINNumber, u.Status = "gone", "1234", patron.StatusInactive })
		ro := s.makeKey("discovery", "api", true)
		header := url.QueryEscape("a b%c+7")

		if w := s.do(http.MethodPost, "/almaws/v1/users/reader?op=auth", "", "Authorization", "apikey "+ro, "Exl-User-Pw", header); w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Fatalf("the right PIN in Exl-User-Pw with a read-only key: %d %s", w.Code, w.Body)
		}
		want(t, s.do(http.MethodPost, "/almaws/v1/users/reader?password="+header, ""), http.StatusNoContent) // op=auth is the default
		want(t, s.do(http.MethodPost, "/almaws/v1/users/BC-9?user_id_type=BARCODE&op=auth", "", "Exl-User-Pw", header), http.StatusNoContent)

		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader?op=auth&format=json", "", "Exl-User-Pw", "0000"), http.StatusBadRequest, "401866")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/gone?op=auth", "", "Exl-User-Pw", "1234"), http.StatusBadRequest, "401866")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader?op=auth", ""), http.StatusBadRequest, "401664")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/nobody?op=auth", "", "Exl-User-Pw", "1234"), http.StatusBadRequest, "401861")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader?op=refresh", ""), http.StatusBadRequest, "401873")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader?op=merge", "", "Exl-User-Pw", header), http.StatusBadRequest, "401666")

		// Wrong PINs lock the account (five: the kit's default), then the
		// right one is refused too, until the lockout ends.
		for range 4 {
			almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader?op=auth", "", "Exl-User-Pw", "0000"), http.StatusBadRequest, "401866")
		}
		w := s.do(http.MethodPost, "/almaws/v1/users/reader?op=auth&format=json", "", "Exl-User-Pw", header)
		if msg := almaErr(t, w, http.StatusBadRequest, "401866"); !strings.Contains(msg, "locked") || w.Header().Get("Retry-After") == "" {
			t.Errorf("a locked account: %q, Retry-After %q", msg, w.Header().Get("Retry-After"))
		}
		if _, err := k.Patrons.SignIn(t.Context(), inst, "reader", "a b%c+7", "alma-api key elsewhere"); err != nil {
			t.Errorf("the lock holds for the key's source only: %v", err)
		}
		k.Clock.Advance(16 * time.Minute)
		want(t, s.do(http.MethodPost, "/almaws/v1/users/reader?op=auth", "", "Exl-User-Pw", header), http.StatusNoContent)
	})
}
