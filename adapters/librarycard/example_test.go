package librarycard_test

import (
	"log"
	"os"
	"testing/fstest"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/adapters/librarycard"
)

// A host mounts the patron's pages beside its API: patrons sign in with
// their primary_id (or barcode) and PIN, or the host's own sign-in names
// them; the theme gives the pages the library's brand and one template
// of the host's own.
func ExampleMount() {
	var kit *patronkit.Kit // patronkit.New(db, &patronkit.Config{SignInIdentifiers: []string{"BARCODE"}}), migrated
	r := gin.New()
	err := librarycard.Mount(r.Group("/card"), kit, &librarycard.Options{
		Institution: "MYUNI",
		// The host's single sign-on, where it has one; the PIN page stays
		// for everyone else.
		Principal: func(c *gin.Context) (ginapi.Who, error) {
			if id := c.GetString("sso_user"); id != "" {
				return ginapi.Who{Institution: "MYUNI", ID: id, Patron: true}, nil
			}
			return ginapi.Who{}, ginapi.ErrNotSignedIn
		},
		SignOutURL: "/sso/logout",
		SessionKey: []byte(os.Getenv("CARD_SESSION_KEY")), // 32 bytes or more; unset: a key kept in the database
		Theme: &librarycard.Theme{
			Name:        "Northwind University Libraries",
			LogoURL:     "/static/logo.svg",
			Colors:      map[string]string{"primary": "#14532d", "link": "#166534"},
			FooterLinks: []librarycard.Link{{Label: "Privacy notice", URL: "https://library.northwind.example/privacy"}},
			Messages:    map[string]map[string]string{"en": {"overview.title": "My account"}},
			Templates:   fstest.MapFS{"fees.html": {Data: []byte(`{{define "content"}}<p>Pay at any desk: {{.Moneys .Data.Balance}}</p>{{end}}`)}},
		},
	})
	if err != nil {
		log.Print(err) // here: no kit
	}
}
