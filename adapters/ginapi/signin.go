package ginapi

import (
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/patron"
)

// BasicPIN is a principal resolver for API clients that sign in with HTTP
// Basic: the user name is the primary_id, the password the PIN. Staff
// records (record_type STAFF) act as staff; everyone else as a patron on
// their own account. Failed sign-ins are counted and lock the account (429
// with Retry-After) as the patron service is configured.
//
// Real hosts usually bring their own login and write their own resolver;
// this one serves the demo portal and API clients of small deployments.
func BasicPIN(users *patron.Service, institution string) PrincipalFunc {
	return func(c *gin.Context) (Who, error) {
		id, pin, ok := c.Request.BasicAuth()
		if !ok {
			c.Header("WWW-Authenticate", `Basic realm="patronkit", charset="UTF-8"`)
			return Who{}, fmt.Errorf("%w: use HTTP Basic with your primary_id and PIN", ErrNotSignedIn)
		}
		u, err := users.SignIn(c.Request.Context(), institution, id, pin)
		if err != nil {
			if e, ok := patron.AsError(err); ok && e.Kind == patron.Unauthenticated {
				c.Header("WWW-Authenticate", `Basic realm="patronkit", charset="UTF-8"`)
			}
			return Who{}, err
		}
		return Who{Institution: institution, ID: u.PrimaryID, Patron: u.RecordType != patron.RecordStaff}, nil
	}
}
