package almaapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// specRoutes are the routes of Alma's users API, as its OpenAPI
// description lists them (paths in Gin's form). Those patronkit does not
// serve (deposits, purchase requests, resource sharing, Leganto
// notifications, linked accounts, the staff login report, the operations
// Alma keeps for itself) answer Alma's error for an unsupported
// operation, never a 500.
var specRoutes = [][2]string{
	{http.MethodGet, "/users"},
	{http.MethodPost, "/users"},
	{http.MethodGet, "/users/:user_id"},
	{http.MethodPut, "/users/:user_id"},
	{http.MethodDelete, "/users/:user_id"},
	{http.MethodPost, "/users/:user_id/attachments"},
	{http.MethodGet, "/users/:user_id/attachments/:attachment_id"},
	{http.MethodGet, "/users/:user_id/fees"},
	{http.MethodPost, "/users/:user_id/fees"},
	{http.MethodPost, "/users/:user_id/fees/all"},
	{http.MethodGet, "/users/:user_id/fees/:fee_id"},
	{http.MethodPost, "/users/:user_id/fees/:fee_id"},
	{http.MethodGet, "/users/:user_id/loans"},
	{http.MethodPost, "/users/:user_id/loans"},
	{http.MethodGet, "/users/:user_id/loans/:loan_id"},
	{http.MethodPost, "/users/:user_id/loans/:loan_id"},
	{http.MethodGet, "/users/:user_id/personal-data"},
	{http.MethodGet, "/users/:user_id/requests"},
	{http.MethodPost, "/users/:user_id/requests"},
	{http.MethodGet, "/users/:user_id/requests/:request_id"},
	{http.MethodDelete, "/users/:user_id/requests/:request_id"},
	{http.MethodGet, "/users/ME"},
	{http.MethodGet, "/users/operation/test"},
	{http.MethodPost, "/users/operation/test"},
	{http.MethodGet, "/users/staff-login-report"},
	{http.MethodPost, "/users/:user_id"},
	{http.MethodGet, "/users/:user_id/deposits"},
	{http.MethodPost, "/users/:user_id/deposits"},
	{http.MethodGet, "/users/:user_id/deposits/:deposit_id"},
	{http.MethodPost, "/users/:user_id/deposits/:deposit_id"},
	{http.MethodPut, "/users/:user_id/loans/:loan_id"},
	{http.MethodGet, "/users/:user_id/purchase-requests"},
	{http.MethodPost, "/users/:user_id/purchase-requests"},
	{http.MethodGet, "/users/:user_id/purchase-requests/:purchase_request_id"},
	{http.MethodPost, "/users/:user_id/purchase-requests/:purchase_request_id"},
	{http.MethodPost, "/users/:user_id/requests/:request_id"},
	{http.MethodPut, "/users/:user_id/requests/:request_id"},
	{http.MethodPost, "/users/:user_id/resource-sharing-requests"},
	{http.MethodGet, "/users/:user_id/resource-sharing-requests/:request_id"},
	{http.MethodPost, "/users/:user_id/resource-sharing-requests/:request_id"},
	{http.MethodDelete, "/users/:user_id/resource-sharing-requests/:request_id"},
	{http.MethodGet, "/users/:user_id/leganto-notifications"},
}

// unsupported answers Alma's error for an operation it does not support
// (after the key is checked, as any request).
func (a *api) unsupported(c *gin.Context) {
	method := c.Request.Method
	if method == http.MethodHead {
		method = http.MethodGet // HEAD answers as GET does
	}
	a.almaError(c, http.StatusBadRequest, codeNotSupported, "The operation is not supported: patronkit keeps no data for "+method+" "+c.FullPath()+".")
}
