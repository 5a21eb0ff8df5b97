package almaapi_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/adapters/almaapi"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/apikeys"
	"github.com/patronkit/patronkit/internal/conformance"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// server is a kit with Alma's users API mounted at /almaws/v1 and the
// native API at /api (principal in X-Test-Who: INSTITUTION/primary_id/staff),
// and a key of UNI acting as the STAFF user "api", a user administrator
// and fulfillment administrator.
type server struct {
	t   testing.TB
	k   *patronkittest.Kit
	r   *gin.Engine
	key string
}

const inst = "UNI"

func newServer(t testing.TB, k *patronkittest.Kit) *server {
	t.Helper()
	ctx := context.Background()
	patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID, u.RecordType = "api", patron.RecordStaff })
	for _, role := range []string{"user-administrator", "fulfillment-administrator"} {
		if err := k.Access.AssignRole(ctx, inst, "api", role, "*"); err != nil {
			t.Fatal(err)
		}
	}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	if err := almaapi.Mount(r.Group("/almaws/v1"), k.Kit, nil); err != nil {
		t.Fatal(err)
	}
	err := ginapi.Mount(r.Group("/api"), k.Kit, &ginapi.Options{Principal: func(c *gin.Context) (ginapi.Who, error) {
		parts := strings.Split(c.GetHeader("X-Test-Who"), "/")
		if len(parts) != 3 {
			return ginapi.Who{}, nil
		}
		return ginapi.Who{Institution: parts[0], ID: parts[1], Patron: parts[2] == "patron"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, k: k, r: r}
	s.key = s.makeKey("scripts", "api", false)
	return s
}

// makeKey makes a key of UNI acting as staff, returning its secret.
func (s *server) makeKey(name, staff string, readOnly bool) string {
	s.t.Helper()
	ctx := patron.WithActor(context.Background(), patron.Actor{Institution: inst, ID: "api"})
	m, err := s.k.APIKeys.Create(ctx, inst, apikeys.New{Name: name, StaffID: staff, ReadOnly: readOnly})
	if err != nil {
		s.t.Fatal(err)
	}
	return m.Secret
}

// do sends a request with the server's key (unless headers set
// Authorization) and headers as name, value pairs.
func (s *server) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	s.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "apikey "+s.key)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	s.r.ServeHTTP(w, req)
	return w
}

// want fails the test unless the response has the status.
func want(t testing.TB, w *httptest.ResponseRecorder, status int) *httptest.ResponseRecorder {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
	}
	return w
}

// almaError is Alma's error body in JSON.
type almaError struct {
	ErrorsExist bool `json:"errorsExist"`
	ErrorList   struct {
		Error []struct {
			ErrorCode    string `json:"errorCode"`
			ErrorMessage string `json:"errorMessage"`
			TrackingID   string `json:"trackingId"`
		} `json:"error"`
	} `json:"errorList"`
}

// xmlAlmaError is Alma's error body in XML.
type xmlAlmaError struct {
	XMLName     xml.Name `xml:"web_service_result"`
	ErrorsExist bool     `xml:"errorsExist"`
	Errors      []struct {
		ErrorCode    string `xml:"errorCode"`
		ErrorMessage string `xml:"errorMessage"`
		TrackingID   string `xml:"trackingId"`
	} `xml:"errorList>error"`
}

// almaErr checks that w is Alma's error body (JSON or XML, as its
// content type says) with status and the first error's code, and returns
// the first message.
func almaErr(t testing.TB, w *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
	}
	var codes, msgs, tracks []string
	if strings.HasPrefix(w.Header().Get("Content-Type"), "application/xml") {
		var e xmlAlmaError
		if err := xml.Unmarshal(w.Body.Bytes(), &e); err != nil || !e.ErrorsExist {
			t.Fatalf("not Alma's XML error body (%v): %s", err, w.Body.String())
		}
		for _, x := range e.Errors {
			codes, msgs, tracks = append(codes, x.ErrorCode), append(msgs, x.ErrorMessage), append(tracks, x.TrackingID)
		}
	} else {
		var e almaError
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !e.ErrorsExist {
			t.Fatalf("not Alma's JSON error body (%v): %s", err, w.Body.String())
		}
		for _, x := range e.ErrorList.Error {
			codes, msgs, tracks = append(codes, x.ErrorCode), append(msgs, x.ErrorMessage), append(tracks, x.TrackingID)
		}
	}
	if len(codes) == 0 || codes[0] != code || msgs[0] == "" || tracks[0] == "" {
		t.Fatalf("error codes %v (%v), want %s first with a message and a trackingId: %s", codes, msgs, code, w.Body.String())
	}
	return msgs[0]
}

// almaDir is the folder of Alma's schemas and samples.
func almaDir(t testing.TB) string { return conformance.AlmaDir(t) }

// almaAPIDir is the folder of Alma's users API description and samples.
func almaAPIDir(t testing.TB) string { return filepath.Join(filepath.Dir(almaDir(t)), "alma-api") }

// validXML checks body against Alma's schema xsd (rest_user.xsd or
// rest_users.xsd) with xmllint (Debian's libxml2-utils, which CI
// installs).
func validXML(t testing.TB, body []byte, xsd string) {
	t.Helper()
	lint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatal("xmllint is needed to check the XML against Alma's schemas: apt-get install libxml2-utils")
	}
	f := filepath.Join(t.TempDir(), "body.xml")
	if err := os.WriteFile(f, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lint, "--noout", "--nonet", "--schema", filepath.Join(almaDir(t), xsd), f).CombinedOutput()
	if err != nil {
		t.Fatalf("the XML does not validate against %s: %v\n%s\n%s", xsd, err, out, body)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
