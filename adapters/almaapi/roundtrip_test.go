package almaapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/patronkittest"
)

// A user written through the Alma API, read and written back through the
// native API, reads through the Alma API as it was written: nothing lost.
func TestAUserWrittenThroughAlmaSurvivesTheNativeAPI(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		post := `{"primary_id":"rt","first_name":"Rita","middle_name":"Q","last_name":"Trip","user_title":{"value":"Dr"},"gender":{"value":"FEMALE"},
			"user_group":{"value":"UG"},"campus_code":{"value":"MAIN"},"preferred_language":{"value":"en"},"job_category":{"value":"Student"},
			"job_description":"Reader","birth_date":"2001-02-03Z","expiry_date":"2030-06-30Z","purge_date":"2031-06-30Z",
			"rs_library":[{"code":{"value":"MAIN"}}],
			"contact_info":{"address":[{"preferred":true,"line1":"1 Road","line2":"Flat 2","city":"Town","state_province":"ST","postal_code":"12345","country":{"value":"USA"},"address_note":"back door","start_date":"2024-01-01Z","address_type":[{"value":"home"}]}],
			"email":[{"preferred":true,"email_address":"rita@example.org","description":"main","email_type":[{"value":"personal"}]}],
			"phone":[{"preferred":true,"preferred_sms":true,"phone_number":"+15550001","phone_type":[{"value":"mobile"}]}]},
			"user_identifier":[{"id_type":{"value":"BARCODE"},"value":"RT-1","note":"card","status":"ACTIVE"}],
			"user_note":[{"note_type":{"value":"OTHER"},"note_text":"Likes maps","user_viewable":true,"popup_note":true}],
			"user_block":[{"block_type":{"value":"GENERAL"},"block_description":{"value":"LOST_CARD"},"block_status":"ACTIVE","block_note":"lost","expiry_date":"2027-01-01T00:00:00Z"}],
			"user_statistic":[{"statistic_category":{"value":"FIRSTYEAR"},"category_type":{"value":"LEVEL"},"statistic_note":"new"}]}`
		want(t, s.do(http.MethodPost, "/almaws/v1/users", post, "Content-Type", "application/json"), http.StatusOK)
		before := want(t, s.do(http.MethodGet, "/almaws/v1/users/rt?format=json", ""), http.StatusOK)

		native := want(t, s.do(http.MethodGet, "/api/users/rt", "", "X-Test-Who", "UNI/api/staff"), http.StatusOK)
		var rec map[string]any
		if err := json.Unmarshal(native.Body.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"id", "version", "created_date", "updated_date", "warnings"} {
			delete(rec, key)
		}
		body, _ := json.Marshal(rec)
		want(t, s.do(http.MethodPut, "/api/users/rt", string(body), "X-Test-Who", "UNI/api/staff", "Content-Type", "application/json",
			"If-Match", native.Header().Get("ETag")), http.StatusOK)

		after := want(t, s.do(http.MethodGet, "/almaws/v1/users/rt?format=json", ""), http.StatusOK)
		b, a := read(t, before.Body.Bytes(), false), read(t, after.Body.Bytes(), false)
		if !reflect.DeepEqual(b, a) {
			t.Errorf("the user changed on its way through the native API:\nbefore %+v\nafter  %+v", b, a)
		}
		if b.RSLibrary != "MAIN" || b.Blocks[0].ExpiryDate != "2027-01-01" || !b.Phones[0].PreferredSMS || b.Notes[0].NoteText != "Likes maps" ||
			b.Addresses[0].Country != "USA" || b.BirthDate != "2001-02-03" {
			t.Errorf("the Alma API lost fields it was sent: %+v", b)
		}
	})
}

// An external user's SIS-managed fields are protected through the Alma
// API as through the native API: a core field changed is refused; a
// retained field may change (and is remembered as an override); the
// External segments sent back are the SIS's and stay, an Internal one is
// added beside them.
func TestAnExternalUsersSISFieldsAreProtected(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		ctx := context.Background()
		if _, err := k.SIS.CreateProfile(ctx, inst, &sis.Profile{Code: "SIS", Source: sis.Upload, Mode: "synchronize"}); err != nil {
			t.Fatal(err)
		}
		file := `<users><user><primary_id>ext1</primary_id><first_name>Eve</first_name><last_name>Extern</last_name><user_group>UG</user_group>
			<account_type>EXTERNAL</account_type><status>ACTIVE</status>
			<contact_info><emails><email preferred="true"><email_address>eve@sis.example</email_address></email></emails></contact_info></user></users>`
		r, err := k.SIS.StartRun(ctx, inst, "SIS", sis.RunOptions{Upload: strings.NewReader(file), UploadName: "u.xml"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.SIS.Wait(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		got := want(t, s.do(http.MethodGet, "/almaws/v1/users/ext1", ""), http.StatusOK).Body.String()
		if !strings.Contains(got, `segment_type="External"`) || !strings.Contains(got, `<external_id>SIS</external_id>`) {
			t.Fatalf("the external user:\n%s", got)
		}
		renamed := strings.Replace(got, "<first_name>Eve</first_name>", "<first_name>Eva</first_name>", 1)
		almaErr(t, s.do(http.MethodPut, "/almaws/v1/users/ext1", renamed, "Content-Type", "application/xml"), http.StatusBadRequest, "401666")

		regrouped := strings.Replace(got, "<user_group>UG</user_group>", "<user_group>GRAD</user_group>", 1)
		regrouped = strings.Replace(regrouped, "</emails>", `<email><email_address>eve@library.example</email_address></email></emails>`, 1)
		w := want(t, s.do(http.MethodPut, "/almaws/v1/users/ext1?format=json", regrouped, "Content-Type", "application/xml"), http.StatusOK)
		u := read(t, w.Body.Bytes(), false)
		if u.UserGroup != "GRAD" || u.FirstName != "Eve" || len(u.Emails) != 2 {
			t.Fatalf("after PUT: %+v", u)
		}
		for _, e := range u.Emails {
			if want := map[string]string{"eve@sis.example": patron.SegmentExternal, "eve@library.example": patron.SegmentInternal}[e.EmailAddress]; e.SegmentType != want {
				t.Errorf("%s is %s, want %s", e.EmailAddress, e.SegmentType, want)
			}
		}
		ov := want(t, s.do(http.MethodGet, "/api/users/ext1/overrides", "", "X-Test-Who", "UNI/api/staff"), http.StatusOK).Body.String()
		if !strings.Contains(ov, "user_group") {
			t.Errorf("the change of user_group is not remembered: %s", ov)
		}
	})
}
