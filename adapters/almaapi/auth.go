package almaapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/fault"
)

// Alma's code of a user's authentication that fails.
const codeAuthFailed = "401866" // User authentication failed.

// userOpRoutes are Alma's operations on a user (POST /users/{user_id}).
func (a *api) userOpRoutes() []route {
	return []route{
		{http.MethodPost, "/users/:user_id", "users.read", true, "", a.userOp},
	}
}

// readOnlyAllowed are the routes (not GET) a read-only key may call, as
// Alma lets it: authenticating a user changes no data.
var readOnlyAllowed = map[[2]string]bool{{http.MethodPost, "/users/:user_id"}: true}

// userOp is Alma's POST /users/{user_id}: op=auth (the default) checks
// the user's password, here their PIN, sent as password= or, URL-encoded,
// in the Exl-User-Pw header, through the same sign-in as the native API
// (patron.Service.SignIn: its lockout after wrong PINs, its inactive
// accounts), the key counting as the client: 204 when it matches, Alma's
// 400 (401866) when it does not or the account is locked (with
// Retry-After). op=refresh (a linked user refreshed from another
// institution) has no meaning here: Alma's unsupported operation.
func (a *api) userOp(c *gin.Context) {
	switch op := strings.ToLower(strings.TrimSpace(c.DefaultQuery("op", "auth"))); op {
	case "auth":
	case "refresh":
		a.almaError(c, http.StatusBadRequest, codeNotSupported, "The operation is not supported: op=refresh refreshes a user linked to another institution, which patronkit does not keep.")
		return
	default:
		a.fail(c, badParameter("op", "must be auth or refresh"))
		return
	}
	pw := c.Query("password")
	if h := c.GetHeader("Exl-User-Pw"); h != "" {
		dec, err := url.QueryUnescape(h)
		if err != nil {
			a.fail(c, badParameter("Exl-User-Pw", "must be URL-encoded"))
			return
		}
		pw = dec
	}
	if pw == "" {
		a.fail(c, &requestError{codeMandatory, "Mandatory field is missing: password (or the Exl-User-Pw header)"})
		return
	}
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	_, err := a.kit.Patrons.SignIn(a.ctx(c), a.inst(c), who.PrimaryID, pw, "alma-api key "+a.key(c).ID)
	if e, ok := fault.As(err); ok && e.Kind == fault.Locked {
		c.Header("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
		a.almaError(c, http.StatusBadRequest, codeAuthFailed, "User authentication failed: "+e.Detail+".")
		return
	}
	if e, ok := fault.As(err); ok && e.Kind == fault.Unauthenticated {
		a.almaError(c, http.StatusBadRequest, codeAuthFailed, "User authentication failed.")
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
