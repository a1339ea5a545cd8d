// Package web holds chatd's static browser files: the JS SDK under sdk/, the
// demo chat app and the home pages. They are embedded into the binary and
// served by internal/web. The canonical SDK source is sdk/js at the
// repository root; web/sdk holds an identical copy (a test keeps them equal)
// because go:embed cannot reach outside this directory.
package web

import "embed"

// FS is the embedded tree: index.html (demo), home.html (demo off), demo/, sdk/.
//
//go:embed index.html home.html demo sdk
var FS embed.FS
