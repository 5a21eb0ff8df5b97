package ginapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// basicServer mounts the API with HTTP Basic sign-in on an engine that
// trusts no proxy, as BasicPIN asks of hosts that clients reach directly.
type basicServer struct {
	*server
	basic *gin.Engine
}

func newBasicServer(t *testing.T, db *gorm.DB, cfg *patronkit.Config) *basicServer {
	t.Helper()
	if cfg == nil {
		cfg = &patronkit.Config{}
	}
	// A still clock: a Retry-After is exact.
	cfg.Now = func() time.Time { return testNow }
	s := newServer(t, db, cfg)
	s.grant("DEMO", "librarian", "user-administrator", "*")
	r := gin.New()
	if err := r.SetTrustedProxies(nil); err != nil {
		t.Fatal(err)
	}
	if err := ginapi.Mount(r.Group("/api"), s.kit, &ginapi.Options{Principal: ginapi.BasicPIN(s.kit.Patrons, "DEMO")}); err != nil {
		t.Fatal(err)
	}
	return &basicServer{server: s, basic: r}
}

// from reads a user's record as that user, signing in with pin from a
// client address.
func (b *basicServer) from(addr, user, pin string, headers ...string) response {
	b.t.Helper()
	req := httptest.NewRequest("GET", "/api/users/"+user, nil)
	req.RemoteAddr = addr
	req.Header.Set("Authorization", "Basic "+b64(user+":"+pin))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	b.basic.ServeHTTP(w, req)
	return response{w, b.t}
}

// locked checks a 429 locked problem with a Retry-After of want.
func (r response) locked(want time.Duration) {
	r.t.Helper()
	r.status(429)
	if p := r.problem(); p.Type != ginapi.ProblemTypePrefix+"locked" || p.Detail == "" {
		r.t.Fatalf("problem %+v", p)
	}
	if ra := r.Header().Get("Retry-After"); ra != strconv.Itoa(int(want.Seconds())) {
		r.t.Fatalf("Retry-After %q, want %v", ra, want)
	}
}

func TestBasicPINLocksTheGuessingAddressNotTheOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := newBasicServer(t, db, &patronkit.Config{MaxSignInFailures: 3})
		b.create("DEMO", &patron.User{PrimaryID: "librarian", FirstName: "L", LastName: "L", RecordType: patron.RecordStaff, PINNumber: "1111"})
		const attacker, owner = "198.51.100.66:4000", "203.0.113.7:5000"
		for i := 0; i < 3; i++ {
			b.from(attacker, "librarian", "0000").status(401).problem()
		}
		b.from(attacker, "librarian", "1111").locked(15 * time.Minute)
		// A forwarded-for header from a client is not believed.
		b.from(attacker, "librarian", "1111", "X-Forwarded-For", "203.0.113.99").locked(15 * time.Minute)
		// The librarian signs in from their own desk.
		b.from(owner, "librarian", "1111").status(200)

		// An IPv6 client counts by its /64 network.
		for _, addr := range []string{"[2001:db8::1]:1", "[2001:db8::2]:1", "[2001:db8::3]:1"} {
			b.from(addr, "librarian", "0000").status(401)
		}
		b.from("[2001:db8::ffff]:1", "librarian", "1111").locked(15 * time.Minute)
		b.from("[2001:db8:0:1::1]:1", "librarian", "1111").status(200)
	})
}

func TestBasicPINRateLimitsAnAddressBeforeCheckingAnyPIN(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := newBasicServer(t, db, &patronkit.Config{SignInBurst: 2, SignInRefill: time.Minute})
		b.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "S", LastName: "S", PINNumber: "3333"})
		b.create("DEMO", &patron.User{PrimaryID: "faculty1", FirstName: "F", LastName: "F", PINNumber: "4444"})
		const flood = "198.51.100.9:1"
		// student1 signs in from the address before the flood: verified once.
		b.from(flood, "student1", "3333").status(200)
		b.from(flood, "nobody1", "1234").status(401)
		b.from(flood, "nobody2", "1234").status(401)
		// The address has used its failures: a good PIN waits too, before
		// it is checked...
		b.from(flood, "faculty1", "4444").locked(time.Minute)
		b.from(flood, "nobody3", "1234").locked(time.Minute)
		// ...but a credential verified lately needs no check, and other
		// addresses are not limited.
		b.from(flood, "student1", "3333").status(200)
		b.from("203.0.113.7:1", "faculty1", "4444").status(200)
	})
}

func TestBasicPINRemembersACredentialUntilItChanges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := newBasicServer(t, db, nil)
		b.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "S", LastName: "S", PINNumber: "3333"})
		const client = "192.0.2.10:1"
		b.from(client, "student1", "3333").status(200)
		b.from(client, "student1", "3333").status(200)

		replace := func(version int, change map[string]any) int {
			t.Helper()
			var u map[string]any
			b.do(admin, "GET", "/api/users/student1", nil).status(200).json(&u)
			for k, v := range change {
				u[k] = v
			}
			body, _ := json.Marshal(u)
			b.do(admin, "PUT", "/api/users/student1", string(body), "If-Match", `"`+strconv.Itoa(version)+`"`).status(200)
			return version + 1
		}
		v := replace(1, map[string]any{"pin_number": "9999"})
		b.from(client, "student1", "3333").status(401).problem()
		b.from(client, "student1", "9999").status(200)
		b.from(client, "student1", "9999").status(200)
		replace(v, map[string]any{"status": "INACTIVE"})
		b.from(client, "student1", "9999").status(401).problem()
	})
}
