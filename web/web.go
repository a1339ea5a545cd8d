// Package web holds chatd's static browser files: the demo chat app and the
// home pages. They are embedded into the binary and served by internal/web,
// together with the JS SDK embedded from sdk/js.
package web

import "embed"

// FS is the embedded tree: index.html (demo), home.html (demo off), demo/.
//
//go:embed index.html home.html demo
var FS embed.FS
