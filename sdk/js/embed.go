// Package sdkjs embeds the chatd JS SDK (chatd.js and its TypeScript
// declarations) so that chatd serves it at /sdk/. This directory is the
// SDK's only copy: the npm package and the binary ship the same files.
package sdkjs

import "embed"

// FS holds chatd.js and chatd.d.ts.
//
//go:embed chatd.js chatd.d.ts
var FS embed.FS
