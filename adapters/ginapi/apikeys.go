package ginapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/apikeys"
)

// apiKeyRoutes registers the API keys of other applications: make one
// (its secret answered once; one acting as another STAFF user needs
// users.staff too), list them, revoke one.
func (a *api) apiKeyRoutes(g *routes) {
	g.POST("/api-keys", a.createAPIKey)
	g.GET("/api-keys", a.listAPIKeys)
	g.DELETE("/api-keys/:key_id", a.revokeAPIKey)
}

func (a *api) createAPIKey(c *gin.Context) {
	var in apikeys.New
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	// A key is a credential of the staff user it acts as: making one for
	// another is like setting their PIN, a user administrator's action.
	if !strings.EqualFold(strings.TrimSpace(in.StaffID), a.who(c).ID) && !a.allowStaffRecord(c, in.StaffID, "make an API key acting as another STAFF user") {
		return
	}
	k, err := a.kit.APIKeys.Create(a.ctx(c), a.who(c).Institution, in)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, k)
}

func (a *api) listAPIKeys(c *gin.Context) {
	ks, err := a.kit.APIKeys.List(a.ctx(c), a.who(c).Institution)
	if err != nil {
		fail(c, err)
		return
	}
	if ks == nil {
		ks = []apikeys.Key{}
	}
	c.JSON(http.StatusOK, gin.H{"api_keys": ks, "total_record_count": len(ks)})
}

func (a *api) revokeAPIKey(c *gin.Context) {
	if _, err := a.kit.APIKeys.Revoke(a.ctx(c), a.who(c).Institution, c.Param("key_id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
