package main

import (
	"fmt"
	"html"
	"strings"
)

// chart draws the ratio of each server to net/http, per workload, as
// horizontal bars in an SVG (no plotting dependency for ~50 lines of SVG).
// Ratios are "times better than net/http", so longer is better everywhere.
func chart(ran []workload, all map[string]map[string]*result) []byte {
	const (
		width, label, barH, gap, left = 900, 260, 16, 14, 10
	)
	colors := map[string]string{"waitron": "#1f77b4", "waitron threads=64": "#6baed6", "waitron --gc-floor 0": "#1f77b4", "net/http": "#7f7f7f",
		"fasthttp": "#ff7f0e", "raw gnet (ceiling)": "#2ca02c"}
	type bar struct {
		name  string
		ratio float64
	}
	plotW := float64(width - label - 80)
	y := 30
	var b strings.Builder
	for _, w := range ran {
		base := median(all[w.name]["net/http"].values)
		var g []bar
		groupMax := 1.0
		for _, s := range w.servers {
			m := median(all[w.name][s.name].values)
			r := 0.0
			switch {
			case m == 0 || base == 0:
			case w.lowerBetter:
				r = base / m
			default:
				r = m / base
			}
			g = append(g, bar{s.name, r})
			groupMax = max(groupMax, r)
		}
		// Each workload has its own scale (ratios range from 0.02 to over
		// 100); the dashed line marks net/http (1.00).
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", left, y+12, html.EscapeString(w.title+" ("+w.unit+")"))
		y += 20
		top := y
		for _, br := range g {
			wpx := br.ratio / groupMax * plotW
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+10, y+12, html.EscapeString(br.name))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", label, y, wpx, barH, colors[br.name])
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.2f×</text>`+"\n", float64(label)+wpx+4, y+12, br.ratio)
			y += barH + 4
		}
		x1 := float64(label) + plotW/groupMax
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#555" stroke-dasharray="4 3"/>`+"\n", x1, top-2, x1, y-2)
		y += gap
	}
	head := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, y+10) +
		`<rect width="100%" height="100%" fill="white"/>` + "\n" +
		fmt.Sprintf(`<text x="%d" y="16" font-size="14" font-weight="bold">times better than net/http (longer is better; dashed: net/http; each workload on its own scale)</text>`+"\n", left)
	return []byte(head + b.String() + "</svg>\n")
}
