package ginapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// server is a kit mounted under /api of a Gin engine. Requests name their
// principal in the X-Test-Who header as INSTITUTION/primary_id/staff|patron.
type server struct {
	t   testing.TB
	kit *patronkit.Kit
	r   *gin.Engine
	db  *gorm.DB
}

func newServer(t testing.TB, db *gorm.DB, cfg *patronkit.Config) *server {
	t.Helper()
	if db == nil {
		db = dbtest.Open(t, sqldb.SQLite)
	}
	if cfg == nil {
		cfg = &patronkit.Config{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.PINCost = bcrypt.MinCost
	kit, err := patronkit.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := kit.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kit.Close)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	err = ginapi.Mount(r.Group("/api"), kit, &ginapi.Options{Principal: func(c *gin.Context) (ginapi.Who, error) {
		parts := strings.Split(c.GetHeader("X-Test-Who"), "/")
		if len(parts) != 3 {
			return ginapi.Who{}, nil
		}
		return ginapi.Who{Institution: parts[0], ID: parts[1], Patron: parts[2] == "patron"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &server{t: t, kit: kit, r: r, db: db}
}

// grant gives a staff user of an institution a role in a library.
func (s *server) grant(inst, id, role, library string) {
	s.t.Helper()
	if err := s.kit.Access.AssignRole(context.Background(), inst, id, role, library); err != nil {
		s.t.Fatal(err)
	}
}

// create adds a user directly through the service.
func (s *server) create(inst string, u *patron.User) *patron.User {
	s.t.Helper()
	out, err := s.kit.Patrons.Create(context.Background(), inst, u)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

type response struct {
	*httptest.ResponseRecorder
	t testing.TB
}

// do sends a request as who ("" for none) with an optional body (a string
// is sent as it is; anything else as JSON) and headers as name, value pairs.
func (s *server) do(who, method, path string, body any, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("X-Test-Who", who)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	s.r.ServeHTTP(w, req)
	return response{w, s.t}
}

// status fails the test unless the response has the status.
func (r response) status(want int) response {
	r.t.Helper()
	if r.Code != want {
		r.t.Fatalf("status %d, want %d: %s", r.Code, want, r.Body.String())
	}
	return r
}

// json decodes the body into v.
func (r response) json(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body.Bytes(), v); err != nil {
		r.t.Fatalf("body is not JSON: %v: %s", err, r.Body.String())
	}
}

// problem decodes a problem body and checks its media type and request id.
func (r response) problem() ginapi.Problem {
	r.t.Helper()
	if ct := r.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		r.t.Fatalf("content type %q, want application/problem+json: %s", ct, r.Body.String())
	}
	var p ginapi.Problem
	r.json(&p)
	if p.Status != r.Code || p.RequestID == "" || p.RequestID != r.Header().Get(ginapi.RequestIDHeader) || !strings.HasPrefix(p.Type, ginapi.ProblemTypePrefix) {
		r.t.Fatalf("problem body disagrees with the response: %+v", p)
	}
	return p
}

var testNow = time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// refused checks, without stopping the test, that a request named name was
// answered with status and a problem that gives a reason and, when field is
// not empty, names that field.
func (r response) refused(t testing.TB, name string, status int, field string) {
	t.Helper()
	if r.Code != status {
		t.Errorf("%s: status %d, want %d: %.300s", name, r.Code, status, r.Body.String())
		return
	}
	p := r.problem()
	if p.Detail == "" {
		t.Errorf("%s: the problem gives no reason", name)
	}
	if field != "" && !fieldNamed(p, field) {
		t.Errorf("%s: the problem does not name field %s: %+v", name, field, p.Errors)
	}
}

// sisRun makes an upload profile (if missing) and runs a file through it,
// returning the ended run's id.
func (s *server) sisRun(inst, code, xml string) string {
	s.t.Helper()
	ctx := context.Background()
	if _, err := s.kit.SIS.Profile(ctx, inst, code); err != nil {
		if _, err := s.kit.SIS.CreateProfile(ctx, inst, &sis.Profile{Code: code, Source: sis.Upload, Mode: "synchronize"}); err != nil {
			s.t.Fatal(err)
		}
	}
	r, err := s.kit.SIS.StartRun(ctx, inst, code, sis.RunOptions{Upload: strings.NewReader(xml), UploadName: "users.xml"})
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.kit.SIS.Wait(ctx, r.ID); err != nil {
		s.t.Fatal(err)
	}
	return r.ID
}
