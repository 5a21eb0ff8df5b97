package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestTheREADMEWalkThrough runs the commands README.md shows a newcomer, in
// the order it shows them, against a fresh demo portal: every curl command,
// every `go run ./examples/portal sis-run` and `audit-verify`. A command answers 2xx
// unless its comment starts with the status it answers ("# 409, ...").
// What a command's comment or text promises is checked too: a list a
// command shows is not empty (a CSV has rows), a renewal renews, a sis-run
// loads, the audit trail verifies.
//
// Placeholders in upper case (FEE_ID, RUN_ID, API_KEY) take the id the
// latest answer gave: fee_id, the id of an SIS run, or the secret of an
// API key.
func TestTheREADMEWalkThrough(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := walkThrough(string(readme))
	if len(cmds) < 20 {
		t.Fatalf("found %d commands in README.md; the walk-through has more", len(cmds))
	}

	// The portal as run() builds it, served here, so that the test can
	// wait for what goes on in the background (an SIS run).
	data := t.TempDir()
	ctx := context.Background()
	kit, err := openKit(ctx, "", data, slog.New(slog.DiscardHandler), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kit.Close()
	router, err := Router(kit, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(router)
	defer srv.Close()
	base := srv.URL

	ids := map[string]string{}
	for _, c := range cmds {
		line := c.line
		for k, v := range ids {
			line = strings.ReplaceAll(line, k, v)
		}
		words, err := shellWords(line)
		if err != nil {
			t.Fatalf("README line %q: %v", c.line, err)
		}
		if words[0] == "go" && words[3] == "audit-verify" {
			// go run ./examples/portal audit-verify [flags], on the
			// portal's database.
			var out bytes.Buffer
			if err := auditVerify(ctx, append([]string{"-data", data}, words[4:]...), &out); err != nil || !strings.Contains(out.String(), ": whole, up to entry ") {
				t.Fatalf("%s: %v\n%s", c.line, err, out.String())
			}
			continue
		}
		if words[0] == "go" {
			// go run ./examples/portal sis-run [flags] FILE, on the
			// portal's database.
			args := append([]string{"sis-run", "-data", data}, words[4:]...)
			for i, a := range args {
				if strings.HasSuffix(a, ".xml") || strings.HasSuffix(a, ".zip") || strings.HasSuffix(a, ".json") || strings.HasSuffix(a, ".csv") {
					args[i] = filepath.Join(root, a)
				}
			}
			var out bytes.Buffer
			if err := sisRun(ctx, args[1:], &out); err != nil {
				t.Fatalf("%s: %v\n%s", c.line, err, out.String())
			}
			if !strings.Contains(out.String(), "database: "+filepath.Join(data, "patronkit.db")) || !strings.Contains(out.String(), "created") {
				t.Fatalf("%s printed:\n%s", c.line, out.String())
			}
			if strings.Contains(c.comment+c.text, "reject") && !strings.Contains(out.String(), "not loaded:") {
				t.Fatalf("%s does not list the rejected users:\n%s", c.line, out.String())
			}
			continue
		}
		status, body := curl(t, root, base, words)
		want := c.wantStatus()
		if (want == 0 && (status < 200 || status > 299)) || (want != 0 && status != want) {
			t.Fatalf("%s\nanswered %d (want %s): %.400s", c.line, status, c.wantText(), body)
		}
		var obj map[string]any
		if json.Unmarshal(body, &obj) == nil {
			for k, v := range obj {
				s, ok := v.(string)
				if !ok {
					continue
				}
				switch {
				case k == "id" && strings.Contains(line, "/sis/"):
					ids["RUN_ID"] = s
					// A run goes on in the background: what the README
					// shows next (its report) is read once it has ended,
					// as a reader of the README would.
					if _, err := kit.SIS.Wait(ctx, s); err != nil {
						t.Fatalf("waiting for run %s: %v", s, err)
					}
				case k == "id" && strings.Contains(line, "/api/sets") && !strings.Contains(line, "/jobs"):
					ids["SET_ID"] = s // a set just made
				case k == "id" && strings.Contains(line, "/jobs"):
					ids["JOB_ID"] = s // a job over a set, run in the background
					kit.Sets.Wait()
				case k == "secret" && strings.Contains(line, "/api-keys"):
					ids["API_KEY"] = s // an API key's secret, shown once
				case strings.HasSuffix(k, "_id") && k != "primary_id" && k != "title_id" && k != "request_id":
					ids[strings.ToUpper(k)] = s
				}
			}
			if n, ok := obj["total_record_count"].(float64); ok && n == 0 {
				t.Fatalf("%s shows an empty list: %.400s", c.line, body)
			}
			if es, ok := obj["entries"].([]any); ok && len(es) == 0 {
				t.Fatalf("%s shows an empty list: %.400s", c.line, body)
			}
			if okay, ok := obj["ok"].(bool); ok && !okay {
				t.Fatalf("%s: the audit trail is not whole: %.400s", c.line, body)
			}
		}
		if bytes.HasPrefix(body, []byte("seq,")) && bytes.Count(body, []byte("\n")) < 2 {
			t.Fatalf("%s exports no row: %.400s", c.line, body)
		}
		if strings.Contains(line, "/renew") && !bytes.Contains(body, []byte(`"renewed"`)) {
			t.Fatalf("%s renews nothing: %.400s", c.line, body)
		}
	}
}

// readmeCommand is one command of the walk-through, with its trailing
// comment and the paragraph of text before it.
type readmeCommand struct {
	line, comment, text string
}

var leadingStatus = regexp.MustCompile(`^(\d{3})\b`)

// wantStatus is the status the comment names, or 0 for any 2xx.
func (c readmeCommand) wantStatus() int {
	if m := leadingStatus.FindStringSubmatch(c.comment); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func (c readmeCommand) wantText() string {
	if n := c.wantStatus(); n != 0 {
		return strconv.Itoa(n)
	}
	return "2xx"
}

// walkThrough finds the curl and sis-run commands of README.md's indented
// code blocks, in order.
func walkThrough(readme string) []readmeCommand {
	var out []readmeCommand
	var text strings.Builder
	for _, raw := range strings.Split(readme, "\n") {
		if !strings.HasPrefix(raw, "    ") {
			if strings.TrimSpace(raw) == "" || strings.HasPrefix(raw, "#") {
				text.Reset()
			}
			text.WriteString(raw + " ")
			continue
		}
		line := strings.TrimSpace(raw)
		if !strings.HasPrefix(line, "curl ") && !strings.HasPrefix(line, "go run ./examples/portal sis-run ") &&
			!strings.HasPrefix(line, "go run ./examples/portal audit-verify") {
			continue
		}
		cmd, comment := line, ""
		if i := strings.Index(line, "   #"); i > 0 {
			cmd, comment = strings.TrimSpace(line[:i]), strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line[i:]), "#"))
		}
		out = append(out, readmeCommand{line: cmd, comment: comment, text: text.String()})
	}
	return out
}

// shellWords splits a command line as a POSIX shell would for the quoting
// README uses: single and double quotes, no expansions.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case ' ', '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case '\'', '"':
			j := strings.IndexByte(s[i+1:], ch)
			if j < 0 {
				return nil, fmt.Errorf("unclosed %c", ch)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	return words, nil
}

// curl makes the request a curl command line describes (-u, -H, -d, -X,
// -F name=@file, and the URL, whose host is replaced by base) and returns
// the status and body.
func curl(t *testing.T, root, base string, words []string) (int, []byte) {
	t.Helper()
	method, url, user, pass := "", "", "", ""
	var body io.Reader
	header := http.Header{}
	var form *multipart.Writer
	var formBody bytes.Buffer
	for i := 1; i < len(words); i++ {
		w := words[i]
		next := func() string {
			i++
			if i >= len(words) {
				t.Fatalf("curl %s needs a value", w)
			}
			return words[i]
		}
		switch w {
		case "-u":
			user, pass, _ = strings.Cut(next(), ":")
		case "-H":
			k, v, _ := strings.Cut(next(), ":")
			header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-d":
			body = strings.NewReader(next())
			if method == "" {
				method = http.MethodPost
			}
		case "-X":
			method = next()
		case "-F":
			name, file, _ := strings.Cut(next(), "=@")
			if form == nil {
				form = multipart.NewWriter(&formBody)
			}
			part, err := form.CreateFormFile(name, filepath.Base(file))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				t.Fatalf("curl -F: %v", err)
			}
			part.Write(b)
			if method == "" {
				method = http.MethodPost
			}
		default:
			if strings.HasPrefix(w, "-") {
				t.Fatalf("the walk-through test does not know curl's %s", w)
			}
			url = w
		}
	}
	if form != nil {
		form.Close()
		body = &formBody
		header.Set("Content-Type", form.FormDataContentType())
	}
	if method == "" {
		method = http.MethodGet
	}
	const demo = "http://127.0.0.1:8080"
	if !strings.HasPrefix(url, demo) {
		t.Fatalf("README's curl %s does not go to the demo portal %s", url, demo)
	}
	req, err := http.NewRequest(method, base+strings.TrimPrefix(url, demo), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}
