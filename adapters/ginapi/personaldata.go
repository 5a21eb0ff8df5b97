package ginapi

import (
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"
)

// personalDataRoutes registers the downloads of a person's personal data:
// staff download a user's, a patron their own.
func (a *api) personalDataRoutes(g *routes) {
	g.GET("/users/:primary_id/personal-data", a.userPersonalData)
	g.GET("/me/personal-data", a.myPersonalData)
}

func (a *api) userPersonalData(c *gin.Context) {
	a.personalData(c, c.Param("primary_id"), false)
}

func (a *api) myPersonalData(c *gin.Context) {
	a.personalData(c, a.self(c), true)
}

// personalData answers everything held about primaryID as one JSON
// document (own: as the patron sees their own account), each attachment with the link it is downloaded from by the
// reader: staff from the user's attachments, a patron a notice sent to
// them from their notices (their other files have no route of theirs).
// The patron's copy comes as a download.
func (a *api) personalData(c *gin.Context, primaryID string, own bool) {
	answer := a.kit.PersonalData.PersonalData
	if own {
		answer = a.kit.PersonalData.OwnPersonalData
	}
	doc, err := answer(a.ctx(c), a.who(c).Institution, primaryID)
	if err != nil {
		fail(c, err)
		return
	}
	for i := range doc.Attachments {
		att := &doc.Attachments[i]
		switch {
		case !own:
			att.Link = a.path("users", doc.User.PrimaryID, "attachments", att.ID)
		case att.NoticeID != "":
			att.Link = a.path("me", "notices", att.NoticeID)
		}
	}
	if own {
		disposition := mime.FormatMediaType("attachment", map[string]string{"filename": "personal-data-" + doc.User.PrimaryID + ".json"})
		if disposition == "" {
			disposition = "attachment"
		}
		c.Header("Content-Disposition", disposition)
	}
	c.JSON(http.StatusOK, doc)
}
