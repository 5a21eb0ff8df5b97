package sis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// richUserXML is a user with every kind of segment.
const richUserXML = `<user>
  <record_type>PUBLIC</record_type><primary_id>rich1</primary_id><first_name>Rita</first_name><middle_name>Q</middle_name>
  <last_name>Rich &amp; Co</last_name><user_title>Dr</user_title><job_category>Researcher</job_category><job_description>Maps</job_description>
  <gender>FEMALE</gender><user_group>GRAD</user_group><campus_code>NORTH</campus_code><preferred_language>nb</preferred_language>
  <birth_date>1990-03-01Z</birth_date><expiry_date>2028-06-30</expiry_date><purge_date>2029-06-30</purge_date><status>ACTIVE</status>
  <contact_info>
    <addresses><address preferred="true"><line1>1 Fjord Rd</line1><line2>Flat 2</line2><city>Oslo</city><postal_code>0316</postal_code><country>NOR</country><start_date>2024-01-01</start_date><address_types><address_type>home</address_type><address_type>work</address_type></address_types></address></addresses>
    <emails><email preferred="true"><email_address>rita@uni.example</email_address><email_types><email_type>school</email_type></email_types></email><email><email_address>rita@home.example</email_address></email></emails>
    <phones><phone preferred="true" preferred_sms="true"><phone_number>+4712345</phone_number><phone_types><phone_type>mobile</phone_type></phone_types></phone></phones>
  </contact_info>
  <user_identifiers><user_identifier><id_type>BARCODE</id_type><value>R-1</value><status>ACTIVE</status></user_identifier><user_identifier><id_type>UNIV_ID</id_type><value>U-77</value><note>card 2</note><status>INACTIVE</status></user_identifier></user_identifiers>
  <user_blocks><user_block><block_type>GENERAL</block_type><block_description>LIBRARY_CARD</block_description><block_status>ACTIVE</block_status><block_note>No card yet</block_note><expiry_date>2027-01-01</expiry_date></user_block></user_blocks>
  <user_notes><user_note><note_type>REGISTRAR</note_type><note_text>Exchange student &lt;2 terms&gt;</note_text><user_viewable>true</user_viewable><popup_note>false</popup_note></user_note></user_notes>
  <user_statistics><user_statistic><statistic_category>EXCHANGE</statistic_category><category_type>LEVEL</category_type><statistic_note>Erasmus</statistic_note></user_statistic></user_statistics>
  <proxy_for_users><proxy_for_user><primary_id>rich2</primary_id></proxy_for_user></proxy_for_users>
  <rs_libraries><rs_library><code>RS1</code></rs_library></rs_libraries>
</user>`

// sameRecord blanks what differs between two loads of the same record:
// ids, dates of writing, versions.
func sameRecord(t *testing.T, u *patron.User) string {
	t.Helper()
	c := *u
	c.ID, c.Institution, c.Version, c.CreatedAt, c.UpdatedAt, c.SISHash, c.PINHash, c.Warnings = "", "", 0, time.Time{}, time.Time{}, "", "", nil
	b, _ := json.Marshal(c)
	var m map[string]any
	json.Unmarshal(b, &m)
	var scrub func(v any)
	scrub = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "id")
			delete(x, "created_date")
			delete(x, "updated_date")
			for _, y := range x {
				scrub(y)
			}
		case []any:
			for _, y := range x {
				scrub(y)
			}
		}
	}
	scrub(m)
	out, _ := json.Marshal(m)
	return string(out)
}

func TestExportReadsBackToTheSameRecords(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{})
		r := e.run(t, "SIS", usersXML(richUserXML, userXML("plain1", "Paul", "Plain")), false)
		if r.Created != 2 {
			t.Fatalf("load: %s %v", counts(r), e.report(t, r.ID))
		}
		var users bytes.Buffer
		if err := e.sis.Export(e.ctx, "UNI", "SIS", sis.ExportUsers, &users); err != nil {
			t.Fatal(err)
		}
		// The export loads into another institution as the same records.
		if _, err := e.sis.CreateProfile(e.ctx, "COPY", &sis.Profile{Code: "SIS", Source: sis.Upload, Mode: sis.ModeSynchronize}); err != nil {
			t.Fatal(err)
		}
		c, err := e.sis.StartRun(e.ctx, "COPY", "SIS", sis.RunOptions{Upload: bytes.NewReader(users.Bytes()), UploadName: "export.xml"})
		if err != nil {
			t.Fatal(err)
		}
		if c, _ = e.sis.Wait(e.ctx, c.ID); c.Created != 2 {
			t.Fatalf("reload: %s\n%s", counts(c), users.String())
		}
		for _, id := range []string{"rich1", "plain1"} {
			a, _ := e.patrons.Get(e.ctx, "UNI", id)
			b, _ := e.patrons.Get(e.ctx, "COPY", id)
			if ca, cb := sameRecord(t, a), sameRecord(t, b); ca != cb {
				t.Errorf("%s differs after the round trip:\n%s\n%s", id, ca, cb)
			}
		}
		// And into the same institution, it changes nothing.
		again := e.run(t, "SIS", users.String(), false)
		if again.Unchanged != 2 {
			t.Fatalf("the export run over its own source: %s", counts(again))
		}

		var blocks bytes.Buffer
		if err := e.sis.Export(e.ctx, "UNI", "SIS", sis.ExportBlocks, &blocks); err != nil {
			t.Fatal(err)
		}
		got := map[string][]patron.Block{}
		err = sis.XML(sis.Limits{}).Decode(context.Background(), &blocks, func(rec sis.Record) error {
			if rec.Err != nil {
				t.Fatalf("%s: %v", rec.Ref, rec.Err)
			}
			got[rec.User.PrimaryID] = rec.User.Blocks
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || len(got["plain1"]) != 0 || len(got["rich1"]) != 1 || got["rich1"][0].BlockNote != "No card yet" || got["rich1"][0].ExpiryDate != "2027-01-01" {
			t.Fatalf("blocks read back: %+v", got)
		}
		if err := e.sis.Export(e.ctx, "UNI", "SIS", "loans", &blocks); err == nil || !strings.Contains(err.Error(), "users or blocks") {
			t.Fatalf("an unknown export: %v", err)
		}
	})
}
