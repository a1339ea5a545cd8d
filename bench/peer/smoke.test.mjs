// Smoke test run against both benchmark servers with the same socket.io 4
// client: connect, send, receive the push, page history, sync, list sessions.
// SMOKE_SERVERS picks them (default "chatd,peer"); CHATD_BIN names a built
// chatd (default: bin/chatd at the repository root).
//
//   cd bench/peer && node --test smoke.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import crypto from 'node:crypto';
import { io } from 'socket.io-client';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const ADMIN = 'smoke-' + crypto.randomBytes(8).toString('hex');

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

async function waitUp(url, proc, out) {
  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited ${proc.exitCode}: ${out()}`);
    try { if ((await fetch(url + '/healthz')).ok) return; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error('server did not start: ' + out());
    await new Promise((r) => setTimeout(r, 50));
  }
}

function launch(cmd, args, env) {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (b) => { err += b; });
  return { proc, out: () => err };
}

async function post(url, path, body, headers = {}) {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const j = await res.json();
  if (j.status !== 1) throw new Error(`${path}: ${JSON.stringify(j)}`);
  return j.data;
}

// rfc3986 is qs.stringify's escaping of a flat value.
const rfc3986 = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

// signed adds node-chat's signature to flat parameters.
function signed(params, app) {
  const p = { ...params, app_id: app.appId, time_stamp: String(Date.now()), nonce_str: crypto.randomUUID() };
  const base = Object.keys(p).sort().map((k) => `${rfc3986(k)}=${rfc3986(p[k])}`).join('&');
  p.sign = crypto.createHash('md5').update(base + '&app_key=' + app.appSecret).digest('hex');
  return p;
}

const servers = {
  async chatd() {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'smoke-chatd-'));
    const { proc, out } = launch(process.env.CHATD_BIN || join(repo, 'bin', 'chatd'), [], {
      CHATD_ADDR: `127.0.0.1:${port}`, CHATD_STORE: `sqlite:${join(dir, 'chatd.db')}`,
      CHATD_BLOBS: `file:${join(dir, 'files')}`, CHATD_ADMIN_KEY: ADMIN, CHATD_LOG_LEVEL: 'warn',
    });
    const url = `http://127.0.0.1:${port}`;
    await waitUp(url, proc, out);
    const app = await post(url, '/app/create', { appName: 'smoke', description: 'smoke' }, { authorization: 'Bearer ' + ADMIN });
    return {
      url, appId: app.appId,
      token: async (userId) => (await post(url, '/user/getToken', signed({ userId, name: 'N' + userId, avatarUri: '' }, app))).token,
      stop: () => { proc.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); },
    };
  },
  async peer() {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'smoke-peer-'));
    const { proc, out } = launch(process.execPath, [join(here, 'server.mjs')], {
      PEER_ADDR: `127.0.0.1:${port}`, PEER_DB: join(dir, 'peer.db'), PEER_ADMIN_KEY: ADMIN,
    });
    const url = `http://127.0.0.1:${port}`;
    await waitUp(url, proc, out);
    const appId = 'a'.repeat(24);
    return {
      url, appId,
      token: async (userId) => (await post(url, '/user/getToken', { appId, userId, name: 'N' + userId, avatarUri: '' }, { authorization: 'Bearer ' + ADMIN })).token,
      stop: () => { proc.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); },
    };
  },
};

function connect(srv, token) {
  return new Promise((resolve, reject) => {
    const s = io(srv.url, { transports: ['websocket'], query: { token, appId: srv.appId }, reconnection: false, forceNew: true });
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

// call emits with an error-first ack and returns the data.
function call(s, event, arg) {
  return new Promise((resolve, reject) => {
    s.timeout(10000).emit(event, arg, (timeout, err, data) => {
      if (timeout) reject(timeout);
      else if (err) reject(new Error(`${event}: ${JSON.stringify(err)}`));
      else resolve(data);
    });
  });
}

for (const name of (process.env.SMOKE_SERVERS || 'chatd,peer').split(',').filter(Boolean)) {
  test(`${name}: connect, send, receive, history, sync, sessions`, async (t) => {
    const srv = await servers[name]();
    t.after(srv.stop);
    const [ta, tb] = [await srv.token('alice'), await srv.token('bob')];
    await assert.rejects(connect(srv, 'not-a-token'), 'a bad token is refused');
    const a = await connect(srv, ta);
    const b = await connect(srv, tb);
    t.after(() => { a.close(); b.close(); });

    const pushed = new Promise((resolve) => b.once('message', resolve));
    const sent = await call(a, 'send-private-message', { targetId: 'bob', messageType: 1, content: { content: 'hi', n: 1 } });
    assert.equal(sent.seq, 1);
    assert.equal(sent.targetId, 'bob');
    assert.match(sent.msgId, /^[0-9a-f]{24}$/);
    assert.ok(sent.sendSession.sid);

    const push = await pushed;
    assert.equal(push.status, 1);
    assert.equal(push.type, 'user');
    assert.deepEqual(push.data.content, { content: 'hi', n: 1 });
    assert.equal(push.data.senderUserId, 'alice');
    assert.equal(push.data.msgId, sent.msgId);
    const bobSid = push.data.sendSession.sid;
    assert.ok(bobSid && bobSid !== sent.sendSession.sid, 'each side has its own session');

    for (let i = 2; i <= 5; i++) {
      await call(a, 'send-private-message', { targetId: 'bob', messageType: 1, content: JSON.stringify({ content: 'm' + i }) });
    }
    const page = await call(b, 'session-message-list', { sid: bobSid, limit: 3 });
    assert.deepEqual(page.map((m) => m.seq), [5, 4, 3]);
    assert.equal(page[0].sendUser.name, 'Nalice');
    const older = await call(b, 'session-message-list', { sid: bobSid, limit: 3, lastmsgId: page[2].msgId });
    assert.deepEqual(older.map((m) => m.seq), [2, 1]);

    const synced = await call(b, 'sync', { sid: bobSid, afterSeq: 3 });
    assert.deepEqual(synced.map((m) => m.seq), [4, 5]);

    const sessions = await call(b, 'session-list');
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0].targetId, 'alice');
    assert.equal(sessions[0].unread, 5);
    assert.equal(sessions[0].lastMsg.msgId, page[0].msgId);

    await assert.rejects(call(a, 'send-private-message', { targetId: 'nobody', messageType: 1, content: { content: 'x' } }));
    await assert.rejects(call(a, 'session-message-list', { sid: bobSid }), "another user's session is refused");
  });
}
