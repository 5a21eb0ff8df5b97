package librarycard_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/patronkit/patronkit/patronkittest"
)

// TestRefusalReasonsAreInThePagesLanguage: a patron reading in Spanish
// sees why a renewal, a request and a loan are refused in Spanish; one
// reading in English, in English.
func TestRefusalReasonsAreInThePagesLanguage(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		ctx := context.Background()
		if _, err := k.Patrons.AddBlock(ctx, Institution, "faculty1", blockOf("LOST_CARD")); err != nil {
			t.Fatal(err)
		}
		f := lib.visitor().signIn("faculty1", "4444")

		// Renewing every loan: blocked, and the item is requested.
		f.get("/card/loans").post("/card/loans/renew", url.Values{"scope": {"all"}}).status(http.StatusOK).
			has("No renovados: 1.", "faculty1 está bloqueado: LOST_CARD", "otro usuario ha solicitado el ejemplar MAIN-3").
			lacks("is blocked", "is requested by another patron")

		// The block itself, on the blocks and messages page.
		f.get("/card/messages").has("faculty1 está bloqueado: LOST_CARD").lacks("is blocked")

		// A request refused: blocked.
		f.get("/card/items/MAIN-1").post("/card/items/MAIN-1/request", url.Values{"pickup": {"library:MAIN"}}).status(http.StatusUnprocessableEntity).
			has("No puede reservar este ejemplar ahora. faculty1 está bloqueado: LOST_CARD").lacks("cannot request", "is blocked")

		// After the semester, no loan: the fixed due date has passed.
		k.Clock.Set(time.Date(2026, 12, 21, 9, 0, 0, 0, time.UTC))
		f.get("/card/items/MAIN-5").status(http.StatusOK).
			has("No puede llevar este ejemplar en préstamo.", "la fecha de devolución fija "+semesterEnd+" ya pasó", "según Faculty: end of semester").
			lacks("has passed")

		// In English, the same reasons in English.
		f.get("/card/items/MAIN-5?lang=en").has("You cannot borrow this item.", "the fixed due date "+semesterEnd+" has passed").lacks("ya pasó")
	})
}
