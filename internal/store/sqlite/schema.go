package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; PRAGMA user_version records how many ran.
// Append new steps, never edit old ones: files in the field are at any version.
var migrations = []string{
	// 1: the schema (docs/architecture.md, The data model).
	`
CREATE TABLE apps (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	secret      TEXT NOT NULL,
	status      INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL
);

CREATE TABLE users (
	app_id        TEXT NOT NULL,
	user_id       TEXT NOT NULL,
	name          TEXT NOT NULL DEFAULT '',
	avatar_uri    TEXT NOT NULL DEFAULT '',
	token_version INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (app_id, user_id)
) WITHOUT ROWID;

CREATE TABLE conversations (
	id          TEXT PRIMARY KEY,
	app_id      TEXT NOT NULL,
	type        INTEGER NOT NULL,
	key         TEXT NOT NULL,
	name        TEXT NOT NULL DEFAULT '',
	avatar_uri  TEXT NOT NULL DEFAULT '',
	last_seq    INTEGER NOT NULL DEFAULT 0,
	last_msg_at INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	UNIQUE (app_id, type, key)
);

CREATE TABLE members (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	app_id          TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	sid             TEXT NOT NULL UNIQUE,
	read_seq        INTEGER NOT NULL DEFAULT 0,
	joined_seq      INTEGER NOT NULL DEFAULT 0,
	role            INTEGER NOT NULL DEFAULT 0,
	hidden          INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;

-- The session list starts here.
CREATE INDEX members_by_user ON members (app_id, user_id);

CREATE TABLE messages (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq             INTEGER NOT NULL,
	msg_id          TEXT NOT NULL UNIQUE,
	sender_id       TEXT NOT NULL,
	type            INTEGER NOT NULL,
	content         TEXT NOT NULL,
	client_msg_id   TEXT, -- NULL when the sender gave none, so it never collides
	created_at      INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX messages_client_msg_id ON messages (conversation_id, sender_id, client_msg_id);

CREATE TABLE files (
	id           TEXT PRIMARY KEY,
	app_id       TEXT NOT NULL,
	user_id      TEXT NOT NULL,
	key          TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	size         INTEGER NOT NULL DEFAULT 0,
	content_type TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL
);
`,
	// 2: the client id index holds only messages that have one. Most have
	// none, and every send wrote a NULL entry into it: one B-tree insert and
	// one more page in the WAL per message. Lookups (client_msg_id = ?)
	// imply IS NOT NULL, so they still use it; uniqueness is unchanged, as
	// NULLs never collided.
	`
DROP INDEX messages_client_msg_id;
CREATE UNIQUE INDEX messages_client_msg_id ON messages (conversation_id, sender_id, client_msg_id)
	WHERE client_msg_id IS NOT NULL;
`,
	// 3: every membership change bumps members_version in its transaction,
	// and Send reads it with the seq, so a node can keep member lists in
	// memory and know exactly when one is stale.
	`
ALTER TABLE conversations ADD COLUMN members_version INTEGER NOT NULL DEFAULT 0;
`,
	// 4 (hardening): who sees a group's history (see Visibility in package
	// store), route-bound signatures per app, and the nonces of signed
	// requests, kept for the signature window so that a replay is refused
	// after a restart too.
	`
ALTER TABLE conversations ADD COLUMN full_history INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN full_history INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN sign_route INTEGER NOT NULL DEFAULT 0;
CREATE TABLE nonces (
	app_id     TEXT NOT NULL,
	nonce      TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (app_id, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_expiry ON nonces (expires_at);
`,
	// 5 (lifecycle, see store.Lifecycle): the per-conversation change
	// counter and each message's change version, reply and meta (NULL for
	// a plain message). Only changed messages enter messages_changes, so a
	// send writes no more index entries than before. mentions feeds the
	// session list's mentionedUnread (user_id '' is @all); reactions holds
	// one row per user and emoji (created_at in ns, to keep their order);
	// hidden holds delete-for-me ranges.
	`
ALTER TABLE conversations ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reply_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN meta TEXT;
CREATE INDEX messages_changes ON messages (conversation_id, version) WHERE version > 0;

CREATE TABLE mentions (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL,
	seq             INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, user_id, seq)
) WITHOUT ROWID;

CREATE TABLE reactions (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq             INTEGER NOT NULL,
	emoji           TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	created_at      INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, seq, emoji, user_id)
) WITHOUT ROWID;
CREATE INDEX reactions_by_user ON reactions (conversation_id, user_id, seq);

CREATE TABLE hidden (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL,
	version         INTEGER NOT NULL,
	from_seq        INTEGER NOT NULL,
	to_seq          INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, user_id, version)
) WITHOUT ROWID;
`,
	// 6: what each app's uploads add up to, kept with every recorded file,
	// so a storage quota is checked without summing the files table.
	`
CREATE TABLE file_usage (
	app_id TEXT PRIMARY KEY,
	bytes  INTEGER NOT NULL DEFAULT 0,
	files  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO file_usage (app_id, bytes, files) SELECT app_id, SUM(size), COUNT(*) FROM files GROUP BY app_id;
`,
	// 7 (groups): group info, mute-all and dismissal; per-member mutes;
	// user profile extra and deletion. Roles use members.role (1).
	`
ALTER TABLE conversations ADD COLUMN notice TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN extra TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN mute_all INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN dismissed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN muted_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN extra TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
`,
	// 8 (search, see Store.Search): each message's searchable text in
	// search_docs, kept by triggers in the transaction that writes the
	// message (a send, an edit, a recall, which empties it), and indexed by
	// an FTS5 trigram index for terms of 3 characters or more; shorter
	// terms (1-2 Chinese characters) are matched with LIKE over the docs
	// of the searcher's conversations. Only the first 500 characters of a
	// message are indexed (store.MaxSearchTextRunes), which bounds what a
	// long message adds to a send. Existing messages are indexed by
	// BackfillSearch (migration 10), in batches, not here in one transaction.
	`
CREATE TABLE search_docs (
	id              INTEGER PRIMARY KEY,
	conversation_id TEXT NOT NULL,
	seq             INTEGER NOT NULL,
	text            TEXT NOT NULL,
	UNIQUE (conversation_id, seq)
);
CREATE VIRTUAL TABLE search_fts USING fts5(text, content='search_docs', content_rowid='id',
	tokenize='trigram remove_diacritics 1');
CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
	INSERT INTO search_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
	INSERT INTO search_fts (search_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN
	INSERT INTO search_docs (conversation_id, seq, text)
	SELECT new.conversation_id, new.seq, substr(t, 1, 500) FROM (SELECT ` + searchTextSQL + ` AS t) WHERE t <> '';
END;
CREATE TRIGGER messages_search_au AFTER UPDATE OF content, type ON messages BEGIN
	DELETE FROM search_docs WHERE conversation_id = old.conversation_id AND seq = old.seq;
	INSERT INTO search_docs (conversation_id, seq, text)
	SELECT new.conversation_id, new.seq, substr(t, 1, 500) FROM (SELECT ` + searchTextSQL + ` AS t) WHERE t <> '';
END;
CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN
	DELETE FROM search_docs WHERE conversation_id = old.conversation_id AND seq = old.seq;
END;
`,
	// 9 (conversation settings, see store.Settings): each user's own
	// settings of their sessions (pin, mute, hide, draft), the users they
	// block, and when each user was last online.
	`
CREATE TABLE session_settings (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL,
	app_id          TEXT NOT NULL,
	pinned_at       INTEGER NOT NULL DEFAULT 0,
	muted           INTEGER NOT NULL DEFAULT 0,
	hidden          INTEGER NOT NULL DEFAULT 0,
	hidden_seq      INTEGER NOT NULL DEFAULT 0,
	draft           TEXT NOT NULL DEFAULT '',
	updated_at      INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX session_settings_by_user ON session_settings (app_id, user_id);

CREATE TABLE blocks (
	app_id     TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	blocked_id TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (app_id, user_id, blocked_id)
);

CREATE TABLE last_seen (
	app_id  TEXT NOT NULL,
	user_id TEXT NOT NULL,
	seen_at INTEGER NOT NULL,
	PRIMARY KEY (app_id, user_id)
);
`,
	// 10 (search backfill and queue, see BackfillSearch and indexQueued):
	// where the indexing of the messages that predate migration 8 stands,
	// done when there were none (or when an earlier migration 8 indexed
	// them already). And a send no longer indexes its message: it queues
	// its key (one small insert), and the queue is indexed in batches, by
	// the background indexer and by every search before it reads, so a
	// search still finds every message sent before it. Indexing in the
	// send's transaction cost half the send throughput (the FTS5 segment
	// each transaction writes, and the JSON extraction; docs/benchmarks.md,
	// "Search"). An edit or a recall drops the old doc at once.
	`
CREATE TABLE search_queue (
	conversation_id TEXT NOT NULL,
	seq             INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
DROP TRIGGER messages_search_ai;
CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN
	INSERT OR IGNORE INTO search_queue VALUES (new.conversation_id, new.seq);
END;
DROP TRIGGER messages_search_au;
CREATE TRIGGER messages_search_au AFTER UPDATE OF content, type ON messages BEGIN
	DELETE FROM search_docs WHERE conversation_id = old.conversation_id AND seq = old.seq;
	INSERT OR IGNORE INTO search_queue VALUES (new.conversation_id, new.seq);
END;
DROP TRIGGER messages_search_ad;
CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN
	DELETE FROM search_docs WHERE conversation_id = old.conversation_id AND seq = old.seq;
	DELETE FROM search_queue WHERE conversation_id = old.conversation_id AND seq = old.seq;
END;
CREATE TABLE search_backfill (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	conversation_id TEXT NOT NULL,
	seq             INTEGER NOT NULL,
	done            INTEGER NOT NULL
);
INSERT INTO search_backfill VALUES (1, '', 0, NOT EXISTS (SELECT 1 FROM messages) OR EXISTS (SELECT 1 FROM search_docs));
`,
	// 11 (webhooks, docs/webhooks.md): each app's endpoints, and the outbox:
	// one row per event and endpoint, written in the transaction of the
	// change it reports, claimed by a node's worker with a lease.
	`
CREATE TABLE webhook_endpoints (
	id          TEXT PRIMARY KEY,
	app_id      TEXT NOT NULL,
	url         TEXT NOT NULL,
	secret      TEXT NOT NULL,
	events      TEXT NOT NULL,
	timeout_ms  INTEGER NOT NULL DEFAULT 0,
	fail_open   INTEGER NOT NULL DEFAULT 0,
	status      INTEGER NOT NULL DEFAULT 0,
	failures    INTEGER NOT NULL DEFAULT 0,
	reason      TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	UNIQUE (app_id, url)
);
CREATE TABLE webhook_outbox (
	seq         INTEGER PRIMARY KEY,
	id          TEXT NOT NULL UNIQUE,
	event_id    TEXT NOT NULL,
	app_id      TEXT NOT NULL,
	endpoint_id TEXT NOT NULL,
	type        TEXT NOT NULL,
	order_key   TEXT NOT NULL,
	data        TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	status      INTEGER NOT NULL DEFAULT 0,
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL,
	claimed_by  TEXT NOT NULL DEFAULT '',
	claim_until INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	last_status INTEGER NOT NULL DEFAULT 0,
	done_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (seq) WHERE status = 0;
CREATE INDEX webhook_outbox_order ON webhook_outbox (endpoint_id, order_key, seq) WHERE status = 0;
CREATE INDEX webhook_outbox_held ON webhook_outbox (endpoint_id, order_key, seq)
	WHERE status = 0 AND (claim_until <> 0 OR next_at <> created_at);
CREATE INDEX webhook_outbox_app ON webhook_outbox (app_id, seq);
`,
	// 12 (history): members.hid_messages is set once the member has hidden
	// messages (Lifecycle.Hide), so that the history of a reader who never
	// hid anything skips the lookup of their hidden ranges. Triggers keep
	// it: hiding sets it, and a member who joins again gets it back when
	// their hidden ranges from before are still there.
	`
ALTER TABLE members ADD COLUMN hid_messages INTEGER NOT NULL DEFAULT 0;
UPDATE members SET hid_messages = 1 WHERE EXISTS (SELECT 1 FROM hidden h
	WHERE h.conversation_id = members.conversation_id AND h.user_id = members.user_id);
CREATE TRIGGER hidden_member_ai AFTER INSERT ON hidden BEGIN
	UPDATE members SET hid_messages = 1 WHERE conversation_id = new.conversation_id AND user_id = new.user_id AND hid_messages = 0;
END;
CREATE TRIGGER members_hidden_ai AFTER INSERT ON members
WHEN EXISTS (SELECT 1 FROM hidden h WHERE h.conversation_id = new.conversation_id AND h.user_id = new.user_id) BEGIN
	UPDATE members SET hid_messages = 1 WHERE conversation_id = new.conversation_id AND user_id = new.user_id;
END;
`,
	// 13 (search, see Store.Search): the FTS5 table keeps no positions
	// (detail=none): each trigram lists only the docs that hold it, which
	// makes the index smaller and its writes cheaper (docs/benchmarks.md,
	// "Search"); a term is then matched as all its trigrams, and the GLOB
	// on the doc keeps the real substrings. The index is written again by
	// BackfillSearch, in batches after start, from the cursor reset here.
	`
DROP TRIGGER search_docs_ad;
DROP TABLE search_fts;
DELETE FROM search_docs;
DELETE FROM search_queue;
UPDATE search_backfill SET conversation_id = '', seq = 0, done = NOT EXISTS (SELECT 1 FROM messages);
CREATE VIRTUAL TABLE search_fts USING fts5(text, content='search_docs', content_rowid='id',
	tokenize='trigram remove_diacritics 1', detail=none);
CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
	INSERT INTO search_fts (search_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
`,
	// 14 (webhooks, docs/webhooks.md "Claims"): pending deliveries are
	// claimed in memory (one process per database), so the indexes the
	// claim query used are only a cost on every outbox write.
	`
DROP INDEX webhook_outbox_order;
DROP INDEX webhook_outbox_held;
`,
}

// migrate brings the database up to len(migrations) in one transaction, so a
// crash mid-way leaves the previous version intact.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("sqlite: migrate: read user_version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("sqlite: database schema version %d is newer than this chatd (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
		}
	}
	if version < len(migrations) {
		// PRAGMA takes no bind parameters; the value is an int we control.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
			return fmt.Errorf("sqlite: migrate: set user_version: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migrate: commit: %w", err)
	}
	return nil
}

// searchTextSQL is store.SearchText in SQL over the row new (a trigger's
// new row): json_extract of a field only when it is a string.
var searchTextSQL = `CASE WHEN json_valid(new.content) THEN COALESCE(CASE new.type
		WHEN 1 THEN ` + jsonStr("content") + `
		WHEN 4 THEN ` + jsonStr("name") + `
		WHEN 5 THEN trim(COALESCE(` + jsonStr("name") + `, '') || ' ' || COALESCE(` + jsonStr("address") + `, ''))
		WHEN 6 THEN ` + jsonStr("searchText") + `
	END, '') ELSE '' END`

func jsonStr(field string) string {
	return "CASE WHEN json_type(new.content, '$." + field + "') = 'text' THEN json_extract(new.content, '$." + field + "') END"
}
