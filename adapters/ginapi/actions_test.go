package ginapi

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/gin-gonic/gin"
)

// A route the route table does not map to an action is not registered
// (no request reaches it unchecked) and is named, so that Mount fails.
func TestARouteWithoutAnActionIsNotRegistered(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	g := newRoutes(r.Group("/api"), func(Route) []gin.HandlerFunc { return nil })
	ok := func(c *gin.Context) { c.Status(http.StatusOK) }
	g.GET("/users", ok)
	g.POST("/no-action", ok)
	if !slices.Equal(g.missing, []string{"POST /no-action"}) {
		t.Fatalf("routes without an action: %v", g.missing)
	}
	for path, want := range map[string]int{"/api/users": http.StatusOK, "/api/no-action": http.StatusNotFound} {
		method := http.MethodGet
		if path == "/api/no-action" {
			method = http.MethodPost
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		if w.Code != want {
			t.Errorf("%s %s: %d, want %d", method, path, w.Code, want)
		}
	}
}
