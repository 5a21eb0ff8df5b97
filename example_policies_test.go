package patronkit_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/casbinmodel"
)

// A policy author keeps the access model and policy in files: here the
// embedded ones, written out, with one role assignment added by hand.
func Example_policiesFromFiles() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "patronkit-example")
	defer os.RemoveAll(dir)
	modelFile, policyFile := filepath.Join(dir, "model.conf"), filepath.Join(dir, "policy.csv")
	_ = os.WriteFile(modelFile, []byte(casbinmodel.DefaultModel()), 0o644)
	_ = os.WriteFile(policyFile, []byte(casbinmodel.DefaultPolicy()+"\ng, MYUNI/alice, user-administrator, *\n"), 0o644)

	db, err := sqldb.Open(filepath.Join(dir, "library.db"))
	if err != nil {
		log.Fatal(err)
	}
	kit, err := patronkit.New(db, &patronkit.Config{
		Policies: casbinmodel.FromFiles(modelFile, policyFile), // read again by kit.RefreshPolicies
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer kit.Close()
	if err := kit.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	err = ginapi.Mount(r.Group("/library"), kit, &ginapi.Options{
		Principal: func(c *gin.Context) (ginapi.Who, error) {
			return ginapi.Who{Institution: "MYUNI", ID: c.GetHeader("X-User")}, nil // the host's login
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, user := range []string{"alice", "bob"} {
		req := httptest.NewRequest(http.MethodGet, "/library/users", nil)
		req.Header.Set("X-User", user)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Println(user, w.Code)
	}
	// Output:
	// alice 200
	// bob 403
}
