package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are applied in order; migrations[i] is version i+1. Never edit
// one that has shipped: append a new one.
//
// Times are bigint Unix milliseconds (0 means "never"), the same resolution
// node-chat clients see. Conversation keys are bytea because a private key
// holds a NUL byte, which PostgreSQL text rejects. Content is text, not jsonb,
// so it comes back byte for byte.
var migrations = []string{
	// 1: the schema (docs/architecture.md, The data model).
	`
CREATE TABLE apps (
	id          text PRIMARY KEY,
	name        text NOT NULL DEFAULT '',
	description text NOT NULL DEFAULT '',
	secret      text NOT NULL DEFAULT '',
	status      integer NOT NULL DEFAULT 0,
	created_at  bigint NOT NULL
);

CREATE TABLE users (
	app_id        text NOT NULL,
	user_id       text NOT NULL,
	name          text NOT NULL DEFAULT '',
	avatar_uri    text NOT NULL DEFAULT '',
	token_version bigint NOT NULL DEFAULT 0,
	created_at    bigint NOT NULL,
	PRIMARY KEY (app_id, user_id)
);

CREATE TABLE conversations (
	id          text PRIMARY KEY,
	app_id      text NOT NULL,
	type        integer NOT NULL,
	key         bytea NOT NULL,
	name        text NOT NULL DEFAULT '',
	avatar_uri  text NOT NULL DEFAULT '',
	last_seq    bigint NOT NULL DEFAULT 0,
	last_msg_at bigint NOT NULL DEFAULT 0,
	created_at  bigint NOT NULL,
	UNIQUE (app_id, type, key)
);

-- peer_id is the other user of a private conversation (the user itself for a
-- conversation with oneself), so the session list joins the peer's profile
-- without parsing keys; empty for groups.
CREATE TABLE members (
	conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	app_id          text NOT NULL,
	user_id         text NOT NULL,
	sid             text NOT NULL UNIQUE,
	peer_id         text NOT NULL DEFAULT '',
	read_seq        bigint NOT NULL DEFAULT 0,
	joined_seq      bigint NOT NULL DEFAULT 0,
	role            integer NOT NULL DEFAULT 0,
	hidden          boolean NOT NULL DEFAULT false,
	created_at      bigint NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_by_user ON members (app_id, user_id);

-- client_msg_id is NULL when the sender gave none; only real ids are
-- indexed, and only they can collide.
CREATE TABLE messages (
	conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq             bigint NOT NULL,
	msg_id          text NOT NULL UNIQUE,
	sender_id       text NOT NULL,
	type            integer NOT NULL,
	content         text NOT NULL,
	client_msg_id   text,
	created_at      bigint NOT NULL,
	PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_client_msg_id ON messages (conversation_id, sender_id, client_msg_id)
	WHERE client_msg_id IS NOT NULL;

CREATE TABLE files (
	id           text PRIMARY KEY,
	app_id       text NOT NULL,
	user_id      text NOT NULL,
	key          text NOT NULL,
	name         text NOT NULL DEFAULT '',
	size         bigint NOT NULL DEFAULT 0,
	content_type text NOT NULL DEFAULT '',
	created_at   bigint NOT NULL
);
`,
	// 2: signed-request nonces shared by every node, so that a request
	// replayed to another node is refused too.
	`
CREATE TABLE nonces (
	app_id     text NOT NULL,
	nonce      text NOT NULL,
	expires_at bigint NOT NULL,
	PRIMARY KEY (app_id, nonce)
);
CREATE INDEX nonces_expiry ON nonces (expires_at);
`,
	// 3: every membership change bumps members_version in its transaction,
	// and Send reads it with the seq, so a node can keep member lists in
	// memory and know exactly when one is stale.
	`
ALTER TABLE conversations ADD COLUMN members_version bigint NOT NULL DEFAULT 0;
`,
	// 4 (hardening): who sees a group's history (see Visibility in package
	// store) and route-bound signatures per app. (Nonces have their table
	// since 2.)
	`
ALTER TABLE conversations ADD COLUMN full_history boolean NOT NULL DEFAULT false;
ALTER TABLE members ADD COLUMN full_history boolean NOT NULL DEFAULT false;
ALTER TABLE apps ADD COLUMN sign_route boolean NOT NULL DEFAULT false;
`,
	// 5 (lifecycle, see store.Lifecycle): the per-conversation change
	// counter and each message's change version, reply and meta (NULL for
	// a plain message). Only changed messages enter messages_changes, so a
	// send writes no more index entries than before. mentions feeds the
	// session list's mentionedUnread (user_id '' is @all); reactions holds
	// one row per user and emoji (created_at in ns, to keep their order);
	// hidden holds delete-for-me ranges.
	`
ALTER TABLE conversations ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reply_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN meta text;
CREATE INDEX messages_changes ON messages (conversation_id, version) WHERE version > 0;

CREATE TABLE mentions (
	conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         text NOT NULL,
	seq             bigint NOT NULL,
	PRIMARY KEY (conversation_id, user_id, seq)
);

CREATE TABLE reactions (
	conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq             bigint NOT NULL,
	emoji           text NOT NULL,
	user_id         text NOT NULL,
	created_at      bigint NOT NULL,
	PRIMARY KEY (conversation_id, seq, emoji, user_id)
);
CREATE INDEX reactions_by_user ON reactions (conversation_id, user_id, seq);

CREATE TABLE hidden (
	conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         text NOT NULL,
	version         bigint NOT NULL,
	from_seq        bigint NOT NULL,
	to_seq          bigint NOT NULL,
	created_at      bigint NOT NULL,
	PRIMARY KEY (conversation_id, user_id, version)
);
`,
	// 6: what each app's uploads add up to, kept with every recorded file,
	// so a storage quota is checked without summing the files table.
	`
CREATE TABLE file_usage (
	app_id text PRIMARY KEY,
	bytes  bigint NOT NULL DEFAULT 0,
	files  bigint NOT NULL DEFAULT 0
);
INSERT INTO file_usage (app_id, bytes, files) SELECT app_id, SUM(size), COUNT(*) FROM files GROUP BY app_id;
`,
	// 7 (groups): group info, mute-all and dismissal; per-member mutes;
	// user profile extra and deletion. Roles use members.role (1).
	`
ALTER TABLE conversations ADD COLUMN notice text NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN extra text NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN mute_all boolean NOT NULL DEFAULT false;
ALTER TABLE conversations ADD COLUMN dismissed_at bigint NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN muted_until bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN extra text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN deleted_at bigint NOT NULL DEFAULT 0;
`,
	// 8 (search, see Store.Search): each message's searchable text in
	// search_docs, kept by a trigger in the transaction that writes the
	// message (a send, an edit, a recall, which empties it), with a pg_trgm
	// GIN index that serves ILIKE '%term%' for terms of 3 characters or
	// more. The text is stored with diacritics removed (unaccent), and so
	// are the terms. pg_trgm and unaccent are used wherever they are
	// installed (a database may keep extensions in a schema of their own,
	// and chatd's schema need not be on their search_path); a missing one
	// goes into public, or into chatd's schema when there is no public (the
	// lock keeps concurrent migrations of several schemas from racing).
	// Only the first 500 characters are indexed (store.MaxSearchTextRunes).
	// Existing messages are indexed by BackfillSearch (migration 10).
	`
SELECT pg_advisory_xact_lock(hashtext('chatd: create extension pg_trgm'));
CREATE TABLE search_docs (
	conversation_id text NOT NULL,
	seq             bigint NOT NULL,
	text            text NOT NULL,
	PRIMARY KEY (conversation_id, seq)
);
DO $do$
DECLARE
	home text := CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN 'public' ELSE current_schema() END;
	trgm text;
	ua   text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
		EXECUTE format('CREATE EXTENSION pg_trgm WITH SCHEMA %I', home);
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent') THEN
		EXECUTE format('CREATE EXTENSION unaccent WITH SCHEMA %I', home);
	END IF;
	SELECT n.nspname INTO trgm FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
	SELECT n.nspname INTO ua FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'unaccent';
	EXECUTE format('CREATE FUNCTION search_fold(s text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS %L',
		format('SELECT %I.unaccent(%L::regdictionary, s)', ua, quote_ident(ua) || '.unaccent'));
	EXECUTE format('CREATE INDEX search_docs_trgm ON search_docs USING gin (text %I.gin_trgm_ops)', trgm);
END $do$;
` + searchTextFunc + `CREATE FUNCTION messages_search() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
	IF TG_OP <> 'INSERT' THEN
		DELETE FROM search_docs WHERE conversation_id = OLD.conversation_id AND seq = OLD.seq;
	END IF;
	IF TG_OP <> 'DELETE' THEN
		t := left(search_fold(search_text(NEW.type, NEW.content)), 500);
		IF t <> '' THEN
			INSERT INTO search_docs (conversation_id, seq, text) VALUES (NEW.conversation_id, NEW.seq, t);
		END IF;
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER messages_search AFTER INSERT OR DELETE OR UPDATE OF content, type ON messages
	FOR EACH ROW EXECUTE FUNCTION messages_search();
`,
	// 9 (conversation settings, see store.Settings): each user's own
	// settings of their sessions (pin, mute, hide, draft), the users they
	// block, and when each user was last online.
	`
CREATE TABLE session_settings (
	conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         text NOT NULL,
	app_id          text NOT NULL,
	pinned_at       bigint NOT NULL DEFAULT 0,
	muted           boolean NOT NULL DEFAULT false,
	hidden          boolean NOT NULL DEFAULT false,
	hidden_seq      bigint NOT NULL DEFAULT 0,
	draft           text NOT NULL DEFAULT '',
	updated_at      bigint NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX session_settings_by_user ON session_settings (app_id, user_id);

CREATE TABLE blocks (
	app_id     text NOT NULL,
	user_id    text NOT NULL,
	blocked_id text NOT NULL,
	created_at bigint NOT NULL,
	PRIMARY KEY (app_id, user_id, blocked_id)
);

CREATE TABLE last_seen (
	app_id  text NOT NULL,
	user_id text NOT NULL,
	seen_at bigint NOT NULL,
	PRIMARY KEY (app_id, user_id)
);
`,
	// 10 (search backfill and queue, see BackfillSearch and indexQueued):
	// where the indexing of the messages that predate migration 8 stands,
	// done when there were none (or when an earlier migration 8 indexed
	// them already). And a send no longer indexes its message: the trigger
	// queues its key, and the queue is indexed in batches by the background
	// indexer and by every search before it reads. Indexing in the send's
	// transaction (unaccent, the trigram GIN entry) cost a third of the send
	// throughput (docs/benchmarks.md, "Search"). An edit or a recall drops
	// the old doc at once and queues the message again.
	`
CREATE TABLE search_queue (
	conversation_id text NOT NULL,
	seq             bigint NOT NULL,
	PRIMARY KEY (conversation_id, seq)
);
CREATE OR REPLACE FUNCTION messages_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'INSERT' THEN
		DELETE FROM search_docs WHERE conversation_id = OLD.conversation_id AND seq = OLD.seq;
	END IF;
	IF TG_OP = 'DELETE' THEN
		DELETE FROM search_queue WHERE conversation_id = OLD.conversation_id AND seq = OLD.seq;
	ELSE
		INSERT INTO search_queue VALUES (NEW.conversation_id, NEW.seq) ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END $$;
CREATE TABLE search_backfill (
	id              integer PRIMARY KEY CHECK (id = 1),
	conversation_id text NOT NULL,
	seq             bigint NOT NULL,
	done            boolean NOT NULL
);
INSERT INTO search_backfill VALUES (1, '', 0, NOT EXISTS (SELECT 1 FROM messages) OR EXISTS (SELECT 1 FROM search_docs));
` + strings.Replace(searchTextFunc, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1),
	// 11 (webhooks, docs/webhooks.md): each app's endpoints, and the outbox:
	// one row per event and endpoint, written in the transaction of the
	// change it reports, claimed by a node's worker with a lease
	// (FOR UPDATE SKIP LOCKED, so nodes never wait on each other's claims).
	`
CREATE TABLE webhook_endpoints (
	id          text PRIMARY KEY,
	app_id      text NOT NULL,
	url         text NOT NULL,
	secret      text NOT NULL,
	events      text NOT NULL,
	timeout_ms  integer NOT NULL DEFAULT 0,
	fail_open   boolean NOT NULL DEFAULT false,
	status      integer NOT NULL DEFAULT 0,
	failures    integer NOT NULL DEFAULT 0,
	reason      text NOT NULL DEFAULT '',
	created_at  bigint NOT NULL,
	updated_at  bigint NOT NULL,
	UNIQUE (app_id, url)
);
CREATE TABLE webhook_outbox (
	seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id          text NOT NULL UNIQUE,
	event_id    text NOT NULL,
	app_id      text NOT NULL,
	endpoint_id text NOT NULL,
	type        text NOT NULL,
	order_key   text NOT NULL,
	data        text NOT NULL,
	created_at  bigint NOT NULL,
	status      integer NOT NULL DEFAULT 0,
	attempts    integer NOT NULL DEFAULT 0,
	next_at     bigint NOT NULL,
	claimed_by  text NOT NULL DEFAULT '',
	claim_until bigint NOT NULL DEFAULT 0,
	last_error  text NOT NULL DEFAULT '',
	last_status integer NOT NULL DEFAULT 0,
	done_at     bigint NOT NULL DEFAULT 0
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (seq) WHERE status = 0;
CREATE INDEX webhook_outbox_order ON webhook_outbox (endpoint_id, order_key, seq) WHERE status = 0;
CREATE INDEX webhook_outbox_held ON webhook_outbox (endpoint_id, order_key, seq)
	WHERE status = 0 AND (claim_until <> 0 OR next_at <> created_at);
CREATE INDEX webhook_outbox_app ON webhook_outbox (app_id, seq);
`,
	// 12 (history): members.hid_messages, see the SQLite migration 12.
	`
ALTER TABLE members ADD COLUMN hid_messages boolean NOT NULL DEFAULT false;
UPDATE members SET hid_messages = true WHERE EXISTS (SELECT 1 FROM hidden h
	WHERE h.conversation_id = members.conversation_id AND h.user_id = members.user_id);
CREATE FUNCTION hidden_member_ai() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE members SET hid_messages = true WHERE conversation_id = NEW.conversation_id AND user_id = NEW.user_id AND NOT hid_messages;
	RETURN NULL;
END $$;
CREATE TRIGGER hidden_member_ai AFTER INSERT ON hidden FOR EACH ROW EXECUTE FUNCTION hidden_member_ai();
CREATE FUNCTION members_hidden_bi() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.hid_messages := NEW.hid_messages OR EXISTS (SELECT 1 FROM hidden h
		WHERE h.conversation_id = NEW.conversation_id AND h.user_id = NEW.user_id);
	RETURN NEW;
END $$;
CREATE TRIGGER members_hidden_bi BEFORE INSERT ON members FOR EACH ROW EXECUTE FUNCTION members_hidden_bi();
`,
}

// searchTextFunc is store.SearchText in SQL. It is PL/pgSQL, not SQL: the
// send trigger calls it for every message, and a SQL function that is not
// inlined is planned again on every call, which cost a third of the
// trigger's time (docs/benchmarks.md, "Search").
const searchTextFunc = `
CREATE FUNCTION search_text(typ integer, content text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE j json;
BEGIN
	IF left(ltrim(content), 1) <> '{' THEN
		RETURN '';
	END IF;
	j := content::json;
	RETURN coalesce(CASE typ
		WHEN 1 THEN CASE WHEN json_typeof(j->'content') = 'string' THEN j->>'content' END
		WHEN 4 THEN CASE WHEN json_typeof(j->'name') = 'string' THEN j->>'name' END
		WHEN 5 THEN trim(coalesce(CASE WHEN json_typeof(j->'name') = 'string' THEN j->>'name' END, '') || ' ' ||
			coalesce(CASE WHEN json_typeof(j->'address') = 'string' THEN j->>'address' END, ''))
		WHEN 6 THEN CASE WHEN json_typeof(j->'searchText') = 'string' THEN j->>'searchText' END
	END, '');
END $$;
`

// migrate brings the schema up to date. Several nodes may start at once, so
// the whole run holds a transaction-scoped advisory lock keyed by the target
// schema: the first node migrates, the others wait and then find nothing to do.
// DDL is transactional in PostgreSQL, so a failed migration leaves no trace.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(ctx)

	h := fnv.New64a()
	h.Write([]byte("chatd schema migration\x00" + schema))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if schema != "" {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("migrate: create schema %q: %w", schema, err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("migrate: database schema version %d is newer than this chatd (%d)", current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("migrate: version %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("migrate: record version %d: %w", v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
