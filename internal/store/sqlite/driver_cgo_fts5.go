//go:build sqlite_cgo && !sqlite_fts5 && !fts5

package sqlite

// The schema's search index is an FTS5 table, which mattn/go-sqlite3 compiles
// in only with its sqlite_fts5 tag: build with -tags sqlite_cgo,sqlite_fts5.
var _ = build_with_tags_sqlite_cgo_and_sqlite_fts5
