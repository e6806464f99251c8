package tests

import (
	"github.com/waitron/waitron/internal/testutil"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v3"
)

// TestFiberApp: a Fiber v3 app, unmodified (its Handler()), served by
// waitron answers as it does on fasthttp's own server: routing with
// parameters, middleware, JSON, groups, errors.
func TestFiberApp(t *testing.T) {
	app := fiber.New()
	app.Use(func(c fiber.Ctx) error {
		c.Set("X-Middleware", "yes")
		return c.Next()
	})
	app.Get("/hello/:name", func(c fiber.Ctx) error { return c.SendString("Hello, " + c.Params("name") + "!") })
	app.Post("/sum", func(c fiber.Ctx) error {
		var in struct{ A, B int }
		if err := c.Bind().JSON(&in); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, "bad JSON")
		}
		return c.JSON(fiber.Map{"sum": in.A + in.B})
	})
	api := app.Group("/api")
	api.Get("/items/:id<int>", func(c fiber.Ctx) error { return c.JSON(fiber.Map{"id": fiber.Params[int](c, "id")}) })
	h := app.Handler()
	w, ref := startFast(t, h), testutil.FastPeer(t, h)
	for name, raw := range map[string]string{
		"param":     "GET /hello/gopher HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"json":      "POST /sum HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"A\":2,\"B\":3}",
		"bad json":  "POST /sum HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{x",
		"group":     "GET /api/items/42 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"no route":  "GET /api/items/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"pipelined": "GET /hello/a HTTP/1.1\r\nHost: a\r\n\r\nGET /hello/b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	} {
		got := sameAsFasthttp(t, name, raw, w.addr, ref)
		if !strings.Contains(got, "X-Middleware: yes") {
			t.Errorf("%s: the middleware did not run: %q", name, got)
		}
	}
}
