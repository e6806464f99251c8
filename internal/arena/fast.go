package arena

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// NewFast returns the arena application on fasthttp's API, with the same
// answers as New's, for waitron's fasthttp adapter and fasthttp's own
// server alike.
func NewFast(c Config) (fasthttp.RequestHandler, error) {
	a, err := load(c)
	if err != nil {
		return nil, err
	}
	// fasthttp's file server over the static directory, reading from disk
	// per request (SkipCache; its cache would also start a goroutine the
	// handler could never stop), compressing nothing itself.
	files := (&fasthttp.FS{Root: a.static, SkipCache: true, AcceptByteRange: true}).NewRequestHandler()
	return func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		get := ctx.IsGet() || ctx.IsHead()
		switch {
		case path == "/baseline11":
			a.fastBaseline(ctx)
		case path == "/pipeline" && get:
			ctx.SetContentType("text/plain")
			ctx.SetBodyString("ok")
		case strings.HasPrefix(path, "/json/") && get:
			a.fastJSON(ctx, path[len("/json/"):])
		case path == "/upload" && ctx.IsPost():
			fastUpload(ctx)
		case strings.HasPrefix(path, "/static/") && get:
			a.fastStatic(ctx, files, path[len("/static/"):])
		case path == "/pipeline" || strings.HasPrefix(path, "/json/") || path == "/upload" || strings.HasPrefix(path, "/static/"):
			allow := "GET, HEAD"
			if path == "/upload" {
				allow = "POST"
			}
			ctx.Response.Header.Set("Allow", allow)
			fastError(ctx, "method not allowed", http.StatusMethodNotAllowed)
		default:
			fastError(ctx, "404 page not found", http.StatusNotFound)
		}
	}, nil
}

// fastError answers as http.Error does.
func fastError(ctx *fasthttp.RequestCtx, msg string, code int) {
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(code)
	ctx.SetBodyString(msg + "\n")
}

func (a *app) fastBaseline(ctx *fasthttp.RequestCtx) {
	var body []byte
	switch {
	case ctx.IsGet() || ctx.IsHead():
	case ctx.IsPost():
		if s := ctx.RequestBodyStream(); s != nil {
			b, err := io.ReadAll(io.LimitReader(s, maxBaselineBody+1))
			if err != nil || len(b) > maxBaselineBody {
				fastError(ctx, "the body must be an integer", http.StatusBadRequest)
				return
			}
			body = b
		} else if body = ctx.PostBody(); len(body) > maxBaselineBody {
			fastError(ctx, "the body must be an integer", http.StatusBadRequest)
			return
		}
	default:
		ctx.Response.Header.Set("Allow", "GET, HEAD, POST")
		fastError(ctx, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	n, ok := sum(string(ctx.URI().QueryString()), body)
	if !ok {
		fastError(ctx, "the query's values and the body must be integers", http.StatusBadRequest)
		return
	}
	ctx.SetContentType("text/plain")
	ctx.Response.SetBodyRaw(strconv.AppendInt(nil, n, 10))
}

func (a *app) fastJSON(ctx *fasthttp.RequestCtx, count string) {
	b, err := a.answerJSON(count, string(ctx.QueryArgs().Peek("m")))
	if err != nil {
		fastError(ctx, err.Error(), http.StatusBadRequest)
		return
	}
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Vary", "Accept-Encoding")
	enc := chooseEncoding(string(ctx.Request.Header.Peek("Accept-Encoding")))
	if enc == "" {
		ctx.SetBody(b)
		return
	}
	var z bytes.Buffer
	if err := compress(&z, enc, b); err != nil {
		fastError(ctx, err.Error(), http.StatusInternalServerError)
		return
	}
	ctx.Response.Header.Set("Content-Encoding", enc)
	ctx.SetBody(z.Bytes())
}

func fastUpload(ctx *fasthttp.RequestCtx) {
	var n int64
	if s := ctx.RequestBodyStream(); s != nil {
		var err error
		if n, err = io.Copy(io.Discard, s); err != nil {
			fastError(ctx, "the body could not be read", http.StatusBadRequest)
			return
		}
	} else {
		n = int64(len(ctx.PostBody()))
	}
	ctx.SetContentType("text/plain")
	ctx.Response.SetBodyRaw(strconv.AppendInt(nil, n, 10))
}

func (a *app) fastStatic(ctx *fasthttp.RequestCtx, files fasthttp.RequestHandler, name string) {
	f, ok := a.findStatic(name, string(ctx.Request.Header.Peek("Accept-Encoding")))
	if !ok {
		fastError(ctx, "404 page not found", http.StatusNotFound)
		return
	}
	ctx.URI().SetPath("/" + filepath.Base(f.path))
	files(ctx)
	if ctx.Response.StatusCode() != fasthttp.StatusOK && ctx.Response.StatusCode() != fasthttp.StatusPartialContent {
		return
	}
	ctx.SetContentType(f.contentType)
	if a.precompressed {
		ctx.Response.Header.Set("Vary", "Accept-Encoding")
	}
	if f.encoding != "" {
		ctx.Response.Header.Set("Content-Encoding", f.encoding)
	}
}
