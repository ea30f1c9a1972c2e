package main

import (
	"fmt"

	"github.com/batchenrich/batchenrich"
)

// limitRows returns the summary rows of the API's limits with -adaptive,
// e.g. "limit 127.0.0.1:8080" → "1 → 20 (min 1, max 32; 140 up, 61 down)".
func limitRows(limits []batchenrich.UpstreamLimit) [][2]string {
	var rows [][2]string
	for _, l := range limits {
		rows = append(rows, [2]string{"limit " + l.Upstream,
			fmt.Sprintf("%d → %d (min %d, max %d; %d up, %d down)", l.First, l.To, l.Min, l.Max, l.Increases, l.Decreases)})
	}
	return rows
}
