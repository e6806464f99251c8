package tests

import (
	"bufio"
	"fmt"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// gin's c.Stream (which asserts http.CloseNotifier) streams its events, on
// waitron as on net/http.
func TestGinStream(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/events", func(c *gin.Context) {
		i := 0
		c.Stream(func(w io.Writer) bool {
			fmt.Fprintf(w, "event %d\n", i)
			i++
			return i < 3
		})
	})
	for _, srv := range bothServers(t, r) {
		c := srv.dial(t)
		io.WriteString(c, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := testutil.ReadResponse(t, bufio.NewReader(c), http.MethodGet)
		if resp.StatusCode != 200 || body != "event 0\nevent 1\nevent 2\n" || !strings.Contains(strings.Join(resp.TransferEncoding, ","), "chunked") {
			t.Errorf("%s: %d %q %v", srv.name, resp.StatusCode, body, resp.TransferEncoding)
		}
	}
}
