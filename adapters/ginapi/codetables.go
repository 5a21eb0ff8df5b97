package ginapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// codeTableRoutes serves the labels of the codes user records hold.
func (a *api) codeTableRoutes(g *routes) {
	g.GET("/code-tables", a.listCodeTables)
	g.GET("/code-tables/:table", a.getCodeTable)
}

func (a *api) listCodeTables(c *gin.Context) {
	names, err := a.kit.Patrons.CodeTables(a.ctx(c), a.who(c).Institution)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"code_tables": names, "total_record_count": len(names)})
}

// getCodeTable answers a code table as Alma's API shapes one: a name and
// rows of code and description; 404 when the institution holds no labels
// for it.
func (a *api) getCodeTable(c *gin.Context) {
	rows, err := a.kit.Patrons.CodeTable(a.ctx(c), a.who(c).Institution, c.Param("table"))
	if err != nil {
		fail(c, err)
		return
	}
	if len(rows) == 0 {
		problem(c, http.StatusNotFound, "not-found", "no labels are held for the code table "+strconv.Quote(c.Param("table")))
		return
	}
	c.JSON(http.StatusOK, gin.H{"name": c.Param("table"), "row": rows})
}
