package patronkit_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/casbinmodel"
)

// A staff member gets a role in one library (or "*" for all); with
// policies in the database the assignment is kept there, and holds on
// every instance.
func Example_assignStaffRole() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "patronkit-example")
	defer os.RemoveAll(dir)
	db, err := sqldb.Open(filepath.Join(dir, "library.db"))
	if err != nil {
		log.Fatal(err)
	}
	kit, err := patronkit.New(db, &patronkit.Config{Policies: casbinmodel.FromDB(db), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer kit.Close()
	if err := kit.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	if err := kit.Access.AssignRole(ctx, "MYUNI", "desk1", "circulation-desk-operator", "MAIN"); err != nil {
		log.Fatal(err)
	}
	roles, err := kit.Access.Roles(ctx, "MYUNI", "desk1")
	fmt.Println(roles, err)
	// Output: [[circulation-desk-operator MAIN]] <nil>
}
