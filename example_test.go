package patronkit_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/patron"
)

// A host wires patronkit into its Gin app: one constructor, one migration
// call, one mount under a group behind the host's own login.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "patronkit-example")
	defer os.RemoveAll(dir)

	db, err := sqldb.Open(filepath.Join(dir, "library.db")) // or a postgres:// or MySQL DSN
	if err != nil {
		log.Fatal(err)
	}
	kit, err := patronkit.New(db, &patronkit.Config{
		Policies: casbinmodel.FromDB(db), // role assignments persist in the database
		DeletionGuards: []patron.DeletionGuard{patron.DeletionGuardFunc(
			func(ctx context.Context, u *patron.User) ([]string, error) {
				return nil, nil // e.g. ask the host's own systems
			})},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := kit.Migrate(ctx); err != nil { // locked against a second instance
		log.Fatal(err)
	}
	_ = kit.Access.AssignRole(ctx, "MYUNI", "alice", "user-administrator", "*")

	hostLogin := func(c *gin.Context) { c.Set("user", "alice") } // the host's own auth
	r := gin.New()
	lib := r.Group("/library", hostLogin)
	err = ginapi.Mount(lib, kit, &ginapi.Options{
		Principal: func(c *gin.Context) (ginapi.Who, error) {
			// Map the host's session to a staff user or a patron.
			return ginapi.Who{Institution: "MYUNI", ID: c.GetString("user")}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/library/users?limit=5", nil))
	fmt.Println(w.Code, w.Body.String())
	// Output: 200 {"user":[],"total_record_count":0}
}
