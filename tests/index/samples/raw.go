// Copyright 2026 The stacklens fixture authors. All rights reserved.
// Use of this source code is governed by a BSD-style license.

// Package table renders aligned text tables.
package table

import (
	"fmt"
	"strings"
)

const usage = `table renders rows:
	table -sep "," FILE   // not a comment
it's raw, /* not a block */`

// Render joins cells with sep and pads every column to its widest cell.
func Render(rows [][]string, sep string) (string, error) {
	if len(rows) == 0 {
		return "", fmt.Errorf("no rows: %s", usage)
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			if len(cell) > widths[i] {
				widths[i] = len(cell)
			}
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, cell := range row {
			fmt.Fprintf(&b, "%-*s%s", widths[i], cell, sep) /* padded */
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}
