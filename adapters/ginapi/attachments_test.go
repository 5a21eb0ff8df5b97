package ginapi_test

import (
	"bytes"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/patron"
)

// uploadBody builds a multipart/form-data body with a file part (skipped
// when name is "-") and then the fields given as name, value pairs; it
// returns the body and its Content-Type.
func uploadBody(t testing.TB, name, ctype string, content []byte, fields ...string) (string, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if name != "-" {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": name}))
		if ctype != "" {
			h.Set("Content-Type", ctype)
		}
		p, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if err := w.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), w.FormDataContentType()
}

// upload posts a file to a user's attachments as who.
func (s *server) upload(who, primaryID, name, ctype string, content []byte, fields ...string) response {
	s.t.Helper()
	body, bodyType := uploadBody(s.t, name, ctype, content, fields...)
	return s.do(who, http.MethodPost, "/api/users/"+primaryID+"/attachments", body, "Content-Type", bodyType)
}

type attachmentList struct {
	Attachments []patron.Attachment `json:"attachments"`
	Total       int                 `json:"total_record_count"`
}

func (s *server) attachments(who, primaryID string) attachmentList {
	s.t.Helper()
	var l attachmentList
	s.do(who, http.MethodGet, "/api/users/"+primaryID+"/attachments", nil).status(http.StatusOK).json(&l)
	return l
}

func binary(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/256)
	}
	return b
}

func TestUploadListDownloadAndRemoveAttachments(t *testing.T) {
	s := adminServer(t, nil)
	s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
	const desk = "DEMO/desk/staff"
	s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})

	if l := s.attachments(admin, "jdoe"); l.Total != 0 || l.Attachments == nil || len(l.Attachments) != 0 {
		t.Fatalf("a user without attachments: %+v", l)
	}
	scan := binary(300 << 10)
	res := s.upload(desk, "JDOE", "registration form.pdf", "application/pdf", scan, "description", "Signed registration form").status(http.StatusCreated)
	var a patron.Attachment
	res.json(&a)
	if a.ID == "" || a.FileName != "registration form.pdf" || a.ContentType != "application/pdf" || a.Size != int64(len(scan)) ||
		a.Kind != patron.AttachmentUpload || a.Description != "Signed registration form" || a.CreatedBy != "desk" || a.CreatedDate.IsZero() {
		t.Fatalf("uploaded as %+v", a)
	}
	if loc := res.Header().Get("Location"); loc != "/api/users/JDOE/attachments/"+a.ID {
		t.Fatalf("Location %q", loc)
	}
	notice := s.upload(admin, "jdoe", "overdue.txt", "", []byte("Your loan is overdue."), "kind", "notice").status(http.StatusCreated)
	var n patron.Attachment
	notice.json(&n)
	if n.Kind != patron.AttachmentNotice || n.ContentType != "application/octet-stream" {
		t.Fatalf("a notice without a Content-Type: %+v", n)
	}

	l := s.attachments(desk, "jdoe")
	if l.Total != 2 || len(l.Attachments) != 2 || l.Attachments[0].ID != n.ID || l.Attachments[1].ID != a.ID {
		t.Fatalf("list: %+v", l)
	}
	raw := s.do(desk, http.MethodGet, "/api/users/jdoe/attachments", nil).Body.String()
	if strings.Contains(raw, "content\"") || strings.Contains(raw, "overdue.\"") || strings.Contains(raw, "user_id") {
		t.Fatalf("a list carries more than the description of the files: %s", raw)
	}

	dl := s.do(desk, http.MethodGet, "/api/users/jdoe/attachments/"+a.ID, nil).status(http.StatusOK)
	if !bytes.Equal(dl.Body.Bytes(), scan) {
		t.Fatalf("downloaded %d bytes, not the %d uploaded (or not the same)", dl.Body.Len(), len(scan))
	}
	h := dl.Header()
	if h.Get("Content-Type") != "application/pdf" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Length") != "307200" {
		t.Fatalf("download headers: %v", h)
	}
	if cd := h.Get("Content-Disposition"); cd != `attachment; filename="registration form.pdf"` {
		t.Fatalf("Content-Disposition %q", cd)
	}

	// The desk may not remove; an administrator may, once.
	s.do(desk, http.MethodDelete, "/api/users/jdoe/attachments/"+a.ID, nil).status(http.StatusForbidden).problem()
	s.do(admin, http.MethodDelete, "/api/users/jdoe/attachments/"+a.ID, nil).status(http.StatusNoContent)
	s.do(admin, http.MethodDelete, "/api/users/jdoe/attachments/"+a.ID, nil).status(http.StatusNotFound).problem()
	s.do(admin, http.MethodGet, "/api/users/jdoe/attachments/"+a.ID, nil).status(http.StatusNotFound).problem()
	if l := s.attachments(admin, "jdoe"); l.Total != 1 || l.Attachments[0].ID != n.ID {
		t.Fatalf("after the removal: %+v", l)
	}

	// Deleting the user takes the rest along.
	s.do(admin, http.MethodDelete, "/api/users/jdoe", nil).status(http.StatusNoContent)
	s.do(admin, http.MethodGet, "/api/users/jdoe/attachments/"+n.ID, nil).status(http.StatusNotFound).problem()
	s.do(admin, http.MethodGet, "/api/users/jdoe/attachments", nil).status(http.StatusNotFound).problem()
}

func TestHostileFileNamesAreEscapedInTheDownload(t *testing.T) {
	s := adminServer(t, nil)
	s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
	names := []string{
		`report "final"; filename=evil.html`,
		`Lån og innlevering – ø 🎉.pdf`,
		`x.pdf"; filename*=UTF-8''evil.html; a="`,
		`%22.txt`,
	}
	for _, name := range names {
		var a patron.Attachment
		s.upload(admin, "jdoe", name, "text/html", []byte("<script>alert(1)</script>")).status(http.StatusCreated).json(&a)
		if a.FileName != name {
			t.Fatalf("%q stored as %q", name, a.FileName)
		}
		res := s.do(admin, http.MethodGet, "/api/users/jdoe/attachments/"+a.ID, nil).status(http.StatusOK)
		cd := res.Header().Get("Content-Disposition")
		disp, params, err := mime.ParseMediaType(cd)
		if err != nil || disp != "attachment" || len(params) != 1 || params["filename"] != name {
			t.Fatalf("%q: Content-Disposition %q reads as %q %q (%v)", name, cd, disp, params, err)
		}
		if strings.ContainsAny(cd, "\r\n") {
			t.Fatalf("%q: a line break in Content-Disposition %q", name, cd)
		}
		// The HTML is a download, never a page of the API's origin.
		if res.Header().Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(res.Header().Get("Content-Security-Policy"), "sandbox") {
			t.Fatalf("%q: served without nosniff and a sandbox: %v", name, res.Header())
		}
	}
	// A path is cut to its last element; a name with control characters
	// (RFC 2231 lets one be sent) is refused.
	var a patron.Attachment
	s.upload(admin, "jdoe", "../../etc/passwd", "text/plain", []byte("x")).status(http.StatusCreated).json(&a)
	if a.FileName != "passwd" {
		t.Fatalf("a path was stored as the name %q", a.FileName)
	}
	body := "--B\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x.txt\r\n\r\nx\r\n--B--\r\n"
	p := s.do(admin, http.MethodPost, "/api/users/jdoe/attachments", body, "Content-Type", "multipart/form-data; boundary=B").status(http.StatusUnprocessableEntity).problem()
	if !fieldNamed(p, "file_name") {
		t.Fatalf("the refusal does not name file_name: %+v", p)
	}
}

func TestUploadsTheAdapterRefuses(t *testing.T) {
	s := adminServer(t, &patronkit.Config{MaxAttachmentBytes: 1024})
	s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})

	// Over the limit: by a byte, and by far (the body is cut short).
	p := s.upload(admin, "jdoe", "big.bin", "", binary(1025)).status(http.StatusRequestEntityTooLarge).problem()
	if !strings.Contains(p.Detail, "1024 bytes") {
		t.Fatalf("the 413 does not name the limit: %q", p.Detail)
	}
	s.upload(admin, "jdoe", "huge.bin", "", binary(1<<20)).status(http.StatusRequestEntityTooLarge).problem()
	s.upload(admin, "jdoe", "exact.bin", "", binary(1024)).status(http.StatusCreated)

	type request struct{ body, ctype string }
	multipartBody := func(name, ctype string, content []byte, fields ...string) request {
		body, bodyType := uploadBody(t, name, ctype, content, fields...)
		return request{body, bodyType}
	}
	const boundaryB = "multipart/form-data; boundary=B"
	cases := []struct {
		name   string
		req    request
		status int
		field  string
	}{
		{"no file part", multipartBody("-", "", nil, "description", "forgot the file"), 400, "file"},
		{"no part at all", request{"--B--\r\n", boundaryB}, 400, "file"},
		{"unknown part", multipartBody("a.txt", "", []byte("x"), "owner", "x"), 400, "owner"},
		{"two kinds", multipartBody("a.txt", "", []byte("x"), "kind", "notice", "kind", "upload"), 400, "kind"},
		{"two files", request{"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n" +
			"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\r\ny\r\n--B--\r\n", boundaryB}, 400, "file"},
		{"not multipart", request{`{"file_name": "a.txt"}`, "application/json"}, 415, ""},
		{"no boundary", request{"x", "multipart/form-data"}, 415, ""},
		{"malformed", request{"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nno closing boundary", boundaryB}, 400, ""},
		{"empty file", multipartBody("a.txt", "", nil), 422, "content"},
		{"no file name", multipartBody("", "", []byte("x")), 422, "file_name"},
		{"unknown kind", multipartBody("a.txt", "", []byte("x"), "kind", "letter"), 422, "kind"},
		{"long description", multipartBody("a.txt", "", []byte("x"), "description", strings.Repeat("d", 5000)), 422, "description"},
		{"bad media type", multipartBody("a.txt", "pdf", []byte("x")), 422, "content_type"},
	}
	for _, c := range cases {
		s.do(admin, http.MethodPost, "/api/users/jdoe/attachments", c.req.body, "Content-Type", c.req.ctype).refused(t, c.name, c.status, c.field)
	}
	if l := s.attachments(admin, "jdoe"); l.Total != 1 || l.Attachments[0].FileName != "exact.bin" {
		t.Fatalf("refused uploads were kept: %+v", l)
	}
	s.upload(admin, "nobody", "a.txt", "", []byte("x")).status(http.StatusNotFound).problem()
}

func TestAnotherInstitutionFindsNoAttachments(t *testing.T) {
	s := adminServer(t, nil)
	s.grant("OTHER", "librarian", "user-administrator", "*")
	const foreign = "OTHER/librarian/staff"
	s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
	s.create("OTHER", &patron.User{PrimaryID: "jdoe", FirstName: "Other", LastName: "Jane"})
	var a patron.Attachment
	s.upload(admin, "jdoe", "form.pdf", "application/pdf", []byte("DEMO's form")).status(http.StatusCreated).json(&a)

	// OTHER's own jdoe has nothing, and DEMO's attachment is not found
	// through it, nor through a user OTHER does not have.
	if l := s.attachments(foreign, "jdoe"); l.Total != 0 {
		t.Fatalf("OTHER lists %+v", l)
	}
	for _, user := range []string{"jdoe", "nobody"} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			res := s.do(foreign, method, "/api/users/"+user+"/attachments/"+a.ID, nil).status(http.StatusNotFound)
			res.problem()
			if strings.Contains(res.Body.String(), "DEMO") || strings.Contains(res.Body.String(), "form.pdf") {
				t.Fatalf("%s as OTHER: %s", method, res.Body.String())
			}
		}
	}
	s.upload(foreign, "nobody", "x.txt", "", []byte("x")).status(http.StatusNotFound).problem()

	res := s.do(admin, http.MethodGet, "/api/users/jdoe/attachments/"+a.ID, nil).status(http.StatusOK)
	if res.Body.String() != "DEMO's form" {
		t.Fatalf("DEMO's attachment after OTHER's attempts: %q", res.Body.String())
	}
}

func TestPatronsReachNoAttachmentsEvenWhenAPolicyLetsThem(t *testing.T) {
	// A host policy that wrongly lets patrons at their own attachments.
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.csv")
	lines := casbinmodel.DefaultPolicy() + "\np, patron, *, attachments.*, own\n"
	if err := os.WriteFile(policy, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	s := adminServer(t, &patronkit.Config{Policies: casbinmodel.FromFiles("", policy)})
	s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
	var a patron.Attachment
	s.upload(admin, "jdoe", "staff-only.txt", "", []byte("for staff")).status(http.StatusCreated).json(&a)

	const self = "DEMO/jdoe/patron"
	s.do(self, http.MethodGet, "/api/users/jdoe", nil).status(http.StatusOK) // the policy file is in force
	s.do(self, http.MethodGet, "/api/users/jdoe/attachments", nil).status(http.StatusForbidden).problem()
	s.do(self, http.MethodGet, "/api/users/jdoe/attachments/"+a.ID, nil).status(http.StatusForbidden).problem()
	s.do(self, http.MethodDelete, "/api/users/jdoe/attachments/"+a.ID, nil).status(http.StatusForbidden).problem()
	s.upload(self, "jdoe", "mine.txt", "", []byte("x")).status(http.StatusForbidden).problem()
	if l := s.attachments(admin, "jdoe"); l.Total != 1 {
		t.Fatalf("a patron changed the attachments: %+v", l)
	}
}
