package arena

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strconv"
)

// New returns the arena application on net/http's API, reading its data
// from c.Dir; an error names what is missing.
func New(c Config) (http.Handler, error) {
	a, err := load(c)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/baseline11", a.baseline)
	mux.HandleFunc("GET /pipeline", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /json/{count}", a.json)
	mux.HandleFunc("POST /upload", upload)
	mux.HandleFunc("GET /static/{name}", a.staticFile)
	return mux, nil
}

func (a *app) baseline(w http.ResponseWriter, r *http.Request) {
	var body []byte
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBaselineBody+1))
		if err != nil || len(b) > maxBaselineBody {
			http.Error(w, "the body must be an integer", http.StatusBadRequest)
			return
		}
		body = b
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	n, ok := sum(r.URL.RawQuery, body)
	if !ok {
		http.Error(w, "the query's values and the body must be integers", http.StatusBadRequest)
		return
	}
	w.Header()["Content-Type"] = []string{"text/plain"}
	io.WriteString(w, strconv.FormatInt(n, 10))
}

func (a *app) json(w http.ResponseWriter, r *http.Request) {
	b, err := a.answerJSON(r.PathValue("count"), r.URL.Query().Get("m"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Vary"] = []string{"Accept-Encoding"}
	enc := chooseEncoding(r.Header.Get("Accept-Encoding"))
	if enc == "" {
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
		w.Write(b)
		return
	}
	var z bytes.Buffer
	if err := compress(&z, enc, b); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h["Content-Encoding"] = []string{enc}
	h["Content-Length"] = []string{strconv.Itoa(z.Len())}
	w.Write(z.Bytes())
}

func upload(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, "the body could not be read", http.StatusBadRequest)
		return
	}
	w.Header()["Content-Type"] = []string{"text/plain"}
	io.WriteString(w, strconv.FormatInt(n, 10))
}

func (a *app) staticFile(w http.ResponseWriter, r *http.Request) {
	f, ok := a.findStatic(r.PathValue("name"), r.Header.Get("Accept-Encoding"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	file, err := os.Open(f.path)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		http.Error(w, "the file could not be read", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{f.contentType}
	if a.precompressed {
		h["Vary"] = []string{"Accept-Encoding"}
	}
	if f.encoding != "" {
		h["Content-Encoding"] = []string{f.encoding}
	}
	// ServeContent answers ranges and conditional requests, and copies the
	// file with io.Copy, which reaches the server's ReadFrom (sendfile on
	// waitron and net/http).
	http.ServeContent(w, r, "", fi.ModTime(), file)
}
