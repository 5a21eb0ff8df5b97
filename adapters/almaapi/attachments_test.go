package almaapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// A file posted in base64 (JSON or XML) is kept on the user's record,
// listed, and read back with its content on expand=content; bad content
// and unknown attachments answer Alma's codes.
func TestAttachmentsArePostedListedAndReadAsAlmaDoes(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID = "filed" })
		pdf := "%PDF-1.4 signed form"
		w := want(t, s.do(http.MethodPost, "/almaws/v1/users/filed/attachments?format=json",
			`{"file_name":"form.pdf","notes":"Registration form","content":"`+base64.StdEncoding.EncodeToString([]byte(pdf))+`"}`, "Content-Type", "application/json"), http.StatusOK)
		var at struct {
			ID, FileName, MimeType, Type, Notes, Content, CreatedBy string
			Size                                                    int64
		}
		var raw map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		at.ID, _ = raw["id"].(string)
		at.MimeType, _ = raw["mime_type"].(string)
		at.CreatedBy, _ = raw["created_by"].(string)
		if at.ID == "" || at.MimeType != "application/pdf" || raw["size"] != float64(len(pdf)) || at.CreatedBy != "api" || raw["type"] != "UPLOAD" {
			t.Fatalf("the attachment: %s", w.Body)
		}
		want(t, s.do(http.MethodPost, "/almaws/v1/users/filed/attachments",
			`<user_attachment><file_name>note.txt</file_name><content>`+base64.StdEncoding.EncodeToString([]byte("hello"))+`</content></user_attachment>`, "Content-Type", "application/xml"), http.StatusOK)
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/filed/attachments?format=json", `{"file_name":"x.pdf","content":"not base64!"}`), http.StatusBadRequest, "60322")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/filed/attachments?format=json", `{"file_name":"","content":"aGk="}`), http.StatusBadRequest, "401664")

		var l struct {
			Total int `json:"total_record_count"`
			List  []struct {
				ID       string `json:"id"`
				FileName string `json:"file_name"`
				Content  string `json:"content"`
			} `json:"user_attachment"`
		}
		w = want(t, s.do(http.MethodGet, "/almaws/v1/users/filed/attachments?format=json", ""), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || l.Total != 2 || l.List[0].Content != "" {
			t.Fatalf("the list (%v): %s", err, w.Body)
		}
		w = want(t, s.do(http.MethodGet, "/almaws/v1/users/filed/attachments/"+at.ID+"?expand=content&format=json", ""), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil || raw["content"] != base64.StdEncoding.EncodeToString([]byte(pdf)) {
			t.Errorf("the attachment with its content: %s", w.Body)
		}
		w = want(t, s.do(http.MethodGet, "/almaws/v1/users/filed/attachments/"+at.ID, ""), http.StatusOK)
		if !strings.Contains(w.Body.String(), "<file_name>form.pdf</file_name>") || strings.Contains(w.Body.String(), "<content>") {
			t.Errorf("the attachment in XML: %s", w.Body)
		}
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/filed/attachments/nothing", ""), http.StatusBadRequest, "60321")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/nobody/attachments", ""), http.StatusBadRequest, "401861")
	})
}
