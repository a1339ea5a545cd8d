// The benchmark peer: an instant-messaging server written the way a socket.io
// user would write it (socket.io 4, better-sqlite3 in WAL mode, one room per
// user), serving the same socket events, payloads and error-first acks as
// chatd, so that chatd's benchmarks can drive both with the same client.
//
//   node server.mjs                    serve (PEER_ADDR, PEER_DB, PEER_ADMIN_KEY)
//   node server.mjs --seed spec.json   load users, groups and messages into PEER_DB and exit
//
// Users and groups are created over HTTP with the admin key (POST /user/getToken,
// POST /group/create) or seeded from a spec file; sockets authenticate with the
// query (or CONNECT auth) token + appId, like chatd's.
import http from 'node:http';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Server } from 'socket.io';
import Database from 'better-sqlite3';

const PRIVATE = 1;
const GROUP = 2;
const HISTORY_DEFAULT = 20;
const HISTORY_MAX = 100;

export function openDB(path) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 10000');
  db.exec(`
CREATE TABLE IF NOT EXISTS users (
  app_id TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
  avatar_uri TEXT NOT NULL DEFAULT '', token TEXT NOT NULL UNIQUE,
  PRIMARY KEY (app_id, user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, type INTEGER NOT NULL, key TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '', avatar_uri TEXT NOT NULL DEFAULT '',
  last_seq INTEGER NOT NULL DEFAULT 0, last_msg_at INTEGER NOT NULL DEFAULT 0,
  UNIQUE (app_id, type, key));
CREATE TABLE IF NOT EXISTS members (
  conversation_id TEXT NOT NULL, app_id TEXT NOT NULL, user_id TEXT NOT NULL,
  sid TEXT NOT NULL UNIQUE, read_seq INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation_id, user_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members (app_id, user_id);
CREATE TABLE IF NOT EXISTS messages (
  conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, msg_id TEXT NOT NULL UNIQUE,
  sender_id TEXT NOT NULL, type INTEGER NOT NULL, content TEXT NOT NULL,
  created_at INTEGER NOT NULL, PRIMARY KEY (conversation_id, seq)) WITHOUT ROWID;
`);
  return db;
}

export const newId = () => crypto.randomBytes(12).toString('hex');

// queries prepares every statement once.
export function queries(db) {
  const q = {
    user: db.prepare('SELECT * FROM users WHERE app_id = ? AND user_id = ?'),
    userByToken: db.prepare('SELECT * FROM users WHERE token = ?'),
    upsertUser: db.prepare(`INSERT INTO users (app_id, user_id, name, avatar_uri, token) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (app_id, user_id) DO UPDATE SET name = excluded.name, avatar_uri = excluded.avatar_uri`),
    conv: db.prepare('SELECT * FROM conversations WHERE app_id = ? AND type = ? AND key = ?'),
    insertConv: db.prepare('INSERT INTO conversations (id, app_id, type, key, name, avatar_uri) VALUES (?, ?, ?, ?, ?, ?)'),
    renameConv: db.prepare('UPDATE conversations SET name = ?, avatar_uri = ? WHERE id = ?'),
    insertMember: db.prepare('INSERT OR IGNORE INTO members (conversation_id, app_id, user_id, sid) VALUES (?, ?, ?, ?)'),
    member: db.prepare('SELECT * FROM members WHERE conversation_id = ? AND user_id = ?'),
    memberBySid: db.prepare(`SELECT m.*, c.type, c.key, c.name AS conv_name FROM members m
      JOIN conversations c ON c.id = m.conversation_id WHERE m.sid = ? AND m.app_id = ? AND m.user_id = ?`),
    members: db.prepare('SELECT user_id, sid FROM members WHERE conversation_id = ?'),
    bumpSeq: db.prepare('UPDATE conversations SET last_seq = last_seq + 1, last_msg_at = ? WHERE id = ? RETURNING last_seq'),
    insertMsg: db.prepare(`INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)`),
    markRead: db.prepare('UPDATE members SET read_seq = max(read_seq, ?) WHERE conversation_id = ? AND user_id = ?'),
    seqOf: db.prepare('SELECT seq FROM messages WHERE msg_id = ? AND conversation_id = ?'),
    history: db.prepare(`SELECT m.*, u.name AS sender_name, u.avatar_uri AS sender_avatar FROM messages m
      LEFT JOIN users u ON u.app_id = ? AND u.user_id = m.sender_id
      WHERE m.conversation_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?`),
    after: db.prepare(`SELECT m.*, u.name AS sender_name, u.avatar_uri AS sender_avatar FROM messages m
      LEFT JOIN users u ON u.app_id = ? AND u.user_id = m.sender_id
      WHERE m.conversation_id = ? AND m.seq > ? ORDER BY m.seq ASC LIMIT ?`),
    sessions: db.prepare(`SELECT m.sid, m.read_seq, c.id, c.type, c.key, c.name, c.avatar_uri, c.last_seq, c.last_msg_at,
        lm.msg_id, lm.content, lm.type AS msg_type, lm.created_at
      FROM members m JOIN conversations c ON c.id = m.conversation_id
      LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq
      WHERE m.app_id = ? AND m.user_id = ? ORDER BY c.last_msg_at DESC`),
  };
  q.send = db.transaction((convId, senderId, type, content, now) => {
    const { last_seq: seq } = q.bumpSeq.get(now, convId);
    const msgId = newId();
    q.insertMsg.run(convId, seq, msgId, senderId, type, content, now);
    q.markRead.run(seq, convId, senderId);
    return { seq, msgId };
  });
  q.openPrivate = db.transaction((appId, a, b) => {
    const key = a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
    let c = q.conv.get(appId, PRIVATE, key);
    if (!c) {
      const id = newId();
      q.insertConv.run(id, appId, PRIVATE, key, '', '');
      q.insertMember.run(id, appId, a, newId());
      q.insertMember.run(id, appId, b, newId());
      c = q.conv.get(appId, PRIVATE, key);
    }
    return c;
  });
  q.upsertGroup = db.transaction((appId, groupId, name, avatar, members) => {
    let c = q.conv.get(appId, GROUP, groupId);
    if (!c) {
      q.insertConv.run(newId(), appId, GROUP, groupId, name, avatar || '');
      c = q.conv.get(appId, GROUP, groupId);
    } else {
      q.renameConv.run(name, avatar || '', c.id);
    }
    for (const m of members) {
      const [userId, sid] = Array.isArray(m) ? m : [m, newId()];
      q.insertMember.run(c.id, appId, userId, sid);
    }
    return c;
  });
  return q;
}

// date is node-chat's display date: HH:mm today, YY/MM/DD otherwise.
function date(ms) {
  const d = new Date(ms);
  const now = new Date();
  const p = (n) => String(n).padStart(2, '0');
  if (d.toDateString() === now.toDateString()) return `${p(d.getHours())}:${p(d.getMinutes())}`;
  return `${p(d.getFullYear() % 100)}/${p(d.getMonth() + 1)}/${p(d.getDate())}`;
}

function targetOf(conv, senderId) {
  if (conv.type === GROUP) return conv.key;
  const [a, b] = conv.key.split('\u0000');
  return a === senderId ? b : a;
}

function wireMessage(conv, row) {
  return {
    msgId: row.msg_id,
    content: JSON.parse(row.content),
    conversationType: conv.type,
    senderUserId: row.sender_id,
    targetId: targetOf(conv, row.sender_id),
    messageType: row.type,
    date: date(row.created_at),
    sendUser: { name: row.sender_name || '', avatarUri: row.sender_avatar || '' },
    seq: row.seq,
    timestamp: row.created_at,
  };
}

class ChatError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
const invalid = (m) => new ChatError(1002, m);

function contentArg(c) {
  if (typeof c === 'string') {
    try { c = JSON.parse(c); } catch { throw invalid('content must be an object'); }
  }
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw invalid('content must be an object');
  return JSON.stringify(c);
}

function limitArg(n) {
  n = Number(n || HISTORY_DEFAULT);
  if (!Number.isInteger(n) || n < 1) throw invalid('bad limit');
  return Math.min(n, HISTORY_MAX);
}

export function createServer({ db, adminKey = '' }) {
  const q = queries(db);
  const httpServer = http.createServer((req, res) => handleHTTP(q, adminKey, req, res));
  const io = new Server(httpServer, { serveClient: false, cors: { origin: true } });

  io.use((socket, next) => {
    const token = socket.handshake.auth?.token || socket.handshake.query.token;
    const appId = socket.handshake.auth?.appId || socket.handshake.query.appId;
    const u = token && q.userByToken.get(String(token));
    if (!u || (appId && u.app_id !== appId)) return next(new Error('authentication failed: bad token'));
    socket.data.user = u;
    next();
  });

  io.on('connection', (socket) => {
    const me = socket.data.user;
    socket.join('u:' + me.user_id);

    const on = (event, fn) => socket.on(event, (arg, ack) => {
      if (typeof arg === 'function') { ack = arg; arg = undefined; }
      try {
        const data = fn(arg);
        if (typeof ack === 'function') ack(null, data);
      } catch (err) {
        if (!(err instanceof ChatError)) console.error(event, err);
        if (typeof ack === 'function') ack({ status: err.status || 1000, message: err.message });
      }
    });
    // obj rejects a missing or non-object payload, as chatd does.
    const obj = (arg) => {
      if (!arg || typeof arg !== 'object') throw invalid('missing event payload');
      return arg;
    };
    const session = (sid) => {
      const m = q.memberBySid.get(String(sid || ''), me.app_id, me.user_id);
      if (!m) throw new ChatError(1000, 'no such session');
      return m;
    };
    const send = (conv, type, content, titleFor) => {
      const now = Date.now();
      const { seq, msgId } = q.send(conv.id, me.user_id, type, content, now);
      const msg = wireMessage(conv, {
        msg_id: msgId, content, sender_id: me.user_id, type, seq, created_at: now,
        sender_name: me.name, sender_avatar: me.avatar_uri,
      });
      return { msg, titleFor };
    };

    on('send-private-message', (arg) => {
      arg = obj(arg);
      const target = q.user.get(me.app_id, String(arg.targetId ?? ''));
      if (!target) throw new ChatError(1000, 'unknown user');
      const content = contentArg(arg.content);
      const type = Number(arg.messageType) || 1;
      const conv = q.openPrivate(me.app_id, me.user_id, target.user_id);
      const { msg } = send(conv, type, content);
      const sids = Object.fromEntries(q.members.all(conv.id).map((m) => [m.user_id, m.sid]));
      // Each side gets its own session, titled with the other side.
      const push = (peer, user) => ({ message: '', status: 1, type: 'user',
        data: { ...msg, sendSession: { sid: sids[user], title: peer.name, avatar: peer.avatar_uri } } });
      socket.to('u:' + target.user_id).emit('message', push(me, target.user_id));
      if (target.user_id !== me.user_id) socket.to('u:' + me.user_id).emit('message', push(target, me.user_id));
      return { ...msg, sendSession: { sid: sids[me.user_id], title: target.name, avatar: target.avatar_uri } };
    });

    on('send-group-message', (arg) => {
      arg = obj(arg);
      const conv = q.conv.get(me.app_id, GROUP, String(arg.targetId ?? ''));
      if (!conv) throw new ChatError(1000, 'unknown group');
      const content = contentArg(arg.content);
      const members = q.members.all(conv.id);
      const mine = members.find((m) => m.user_id === me.user_id);
      if (!mine) throw new ChatError(1000, 'not a member');
      const { msg } = send(conv, Number(arg.messageType) || 1, content);
      const ref = { title: conv.name, avatar: conv.avatar_uri };
      // One payload to every member's room: socket.io serialises it once.
      socket.to(members.map((m) => 'u:' + m.user_id)).emit('message',
        { message: '', status: 1, type: 'user', data: { ...msg, sendSession: { sid: '', ...ref } } });
      return { ...msg, sendSession: { sid: mine.sid, ...ref } };
    });

    on('session-message-list', (arg) => {
      arg = obj(arg);
      const m = session(arg.sid);
      let before = Number.MAX_SAFE_INTEGER;
      if (arg.lastmsgId) {
        const r = q.seqOf.get(String(arg.lastmsgId), m.conversation_id);
        if (!r) throw new ChatError(1000, 'no such message');
        before = r.seq;
      }
      const conv = { type: m.type, key: m.key };
      return q.history.all(me.app_id, m.conversation_id, before, limitArg(arg.limit)).map((r) => wireMessage(conv, r));
    });

    on('sync', (arg) => {
      arg = obj(arg);
      const m = session(arg.sid);
      const afterSeq = Number(arg.afterSeq || 0);
      if (!Number.isInteger(afterSeq) || afterSeq < 0) throw invalid('afterSeq must not be negative');
      const conv = { type: m.type, key: m.key };
      return q.after.all(me.app_id, m.conversation_id, afterSeq, limitArg(arg.limit)).map((r) => wireMessage(conv, r));
    });

    on('session-list', () => q.sessions.all(me.app_id, me.user_id).map((s) => {
      let title = s.name;
      let avatar = s.avatar_uri;
      let targetId = s.key;
      if (s.type === PRIVATE) {
        targetId = targetOf(s, me.user_id);
        const peer = q.user.get(me.app_id, targetId);
        title = peer?.name || '';
        avatar = peer?.avatar_uri || '';
      }
      const out = { sid: s.sid, conversationType: s.type, targetId, unread: Math.max(0, s.last_seq - s.read_seq),
        title, avatar, lastSeq: s.last_seq, readSeq: s.read_seq };
      if (s.msg_id) {
        out.lastMsg = { content: JSON.parse(s.content), messageType: s.msg_type, date: date(s.created_at),
          msgId: s.msg_id, timestamp: s.created_at };
      }
      return out;
    }));

    on('set-session-read', (arg) => {
      const m = session(typeof arg === 'string' ? arg : obj(arg).sid);
      const c = db.prepare('SELECT last_seq FROM conversations WHERE id = ?').get(m.conversation_id);
      q.markRead.run(c.last_seq, m.conversation_id, me.user_id);
      return [];
    });
  });
  return { httpServer, io, q };
}

// handleHTTP serves the peer's small admin API: users and groups.
function handleHTTP(q, adminKey, req, res) {
  const reply = (code, body) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.url === '/healthz') return reply(200, { status: 1 });
  if (req.method !== 'POST' || !adminKey || req.headers.authorization !== 'Bearer ' + adminKey) {
    return reply(req.method === 'POST' ? 401 : 404, { status: 1000, message: 'not found or not allowed' });
  }
  let body = '';
  req.on('data', (b) => { body += b; });
  req.on('end', () => {
    let p;
    try { p = JSON.parse(body); } catch { return reply(400, { status: 1002, message: 'bad JSON' }); }
    if (!p.appId) return reply(400, { status: 1002, message: 'missing appId' });
    if (req.url === '/user/getToken' && p.userId) {
      const token = crypto.randomBytes(18).toString('base64url');
      q.upsertUser.run(p.appId, String(p.userId), p.name || '', p.avatarUri || '', token);
      return reply(200, { status: 1, data: { token: q.user.get(p.appId, String(p.userId)).token } });
    }
    if (req.url === '/group/create' && p.groupId && Array.isArray(p.userIds)) {
      q.upsertGroup(p.appId, String(p.groupId), p.name || '', p.avatarUri || '', p.userIds.map(String));
      return reply(200, { status: 1 });
    }
    reply(404, { status: 1000, message: 'not found' });
  });
}

// seed loads a spec written by chatbench: users with their tokens, groups with
// their members' sids, and bulk messages, in one transaction.
function seed(db, spec) {
  const q = queries(db);
  const fill = db.prepare(`INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, created_at)
    VALUES (?, ?, ?, ?, 1, ?, ?)`);
  db.transaction(() => {
    for (const u of spec.users) q.upsertUser.run(spec.appId, u.id, u.name, '', u.token);
    for (const g of spec.groups || []) q.upsertGroup(spec.appId, g.id, g.name, '', g.members);
    for (const p of spec.privates || []) {
      const id = newId();
      q.insertConv.run(id, spec.appId, PRIVATE, p.a < p.b ? `${p.a}\u0000${p.b}` : `${p.b}\u0000${p.a}`, '', '');
      q.insertMember.run(id, spec.appId, p.a, p.sidA);
      q.insertMember.run(id, spec.appId, p.b, p.sidB);
    }
    for (const h of spec.histories || []) {
      const conv = q.conv.get(spec.appId, h.type, h.key);
      for (let i = 1; i <= h.count; i++) {
        fill.run(conv.id, i, msgIdFor(h.idBase, i), h.senders[i % h.senders.length],
          `{"content":"history message ${i}"}`, h.startMs + i);
      }
      db.prepare('UPDATE conversations SET last_seq = ?, last_msg_at = ? WHERE id = ?').run(h.count, h.startMs + h.count, conv.id);
    }
  })();
}

// msgIdFor is the id of seeded message i: the same on both servers.
export function msgIdFor(base, i) {
  return base + i.toString(16).padStart(24 - base.length, '0');
}

async function main() {
  const db = openDB(process.env.PEER_DB || 'peer.db');
  const i = process.argv.indexOf('--seed');
  if (i > 0) {
    seed(db, JSON.parse(readFileSync(process.argv[i + 1], 'utf8')));
    db.close();
    return;
  }
  const { httpServer } = createServer({ db, adminKey: process.env.PEER_ADMIN_KEY || '' });
  const [host, port] = (process.env.PEER_ADDR || '127.0.0.1:3100').split(/:(?=\d+$)/);
  httpServer.listen(Number(port), host || '127.0.0.1', () => console.error(`peer listening on ${host}:${port}`));
  const stop = () => { httpServer.close(); db.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
