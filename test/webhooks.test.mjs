// Webhooks against a real chatd with real HTTP receivers on loopback
// (docs/webhooks.md): every event type arrives signed and verifiable, and
// exactly once; a receiver failing five times gets the event once more and
// no more; a SIGKILL with 1,000 undelivered events loses none; the
// before-send hook allows, rejects, replaces and times out in both fail
// modes; the routes are signed and per app.
//
// CHATD_UPDATE_DOCS=1 rewrites the event catalogue of docs/webhooks.md from
// the deliveries captured here; otherwise the test fails when the document
// no longer matches what chatd sends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChatd, createApp, call, freePort } from './lib/chatd.mjs';
import { connect, call as emit, until, sleep } from './lib/clients.mjs';

const FAST = {
  CHATD_WEBHOOK_ALLOW_PRIVATE: 'true',
  CHATD_WEBHOOK_RETRY_BASE: '20ms',
  CHATD_WEBHOOK_POLL: '50ms',
  CHATD_WEBHOOK_TIMEOUT: '1s',
  CHATD_PRESENCE_GRACE: '100ms',
  CHATD_USER_SEND_RATE: '0',
  CHATD_APP_SEND_RATE: '0',
};

// verify is the receiver's check, as docs/webhooks.md shows it.
function verify(secret, header, body, toleranceSec = 300) {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=')));
  const t = Number(parts.t);
  if (!t || Math.abs(Date.now() / 1000 - t) > toleranceSec) return false;
  const want = crypto.createHmac('sha256', secret).update(`${parts.t}.${body}`).digest();
  const got = Buffer.from(parts.v1 ?? '', 'hex');
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

// receiver is an HTTP endpoint on loopback; answer(event, req) returns
// [status, body] (default 200).
async function receiver(answer = () => [200, ''], port = 0) {
  const got = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', async () => {
      const ev = JSON.parse(body);
      got.push({ headers: req.headers, body, ev });
      const [status, reply] = (await answer(ev, req)) ?? [200, ''];
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(typeof reply === 'string' ? reply : JSON.stringify(reply));
    });
  });
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${srv.address().port}/hook`, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }) };
}

const appId = (a) => a.appId ?? a.id;
const closers = [];
let chatd;
before(async () => { chatd = await startChatd({ env: FAST }); });
after(async () => {
  for (const c of closers.reverse()) await c();
  await chatd?.stop();
});

async function users(app, ...ids) {
  const tokens = {};
  for (const u of ids) {
    const r = await call(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u.toUpperCase(), avatarUri: '' });
    assert.equal(r.status, 1, JSON.stringify(r));
    tokens[u] = r.data.token;
  }
  return tokens;
}

const ALL = ['message.sent', 'message.recalled', 'message.edited', 'group.created', 'group.updated', 'group.dismissed',
  'group.members_changed', 'user.online', 'user.offline', 'session.read'];

test('every event type arrives signed, verifiable and once', async () => {
  const app = await createApp(chatd.url, 'webhooks');
  const rx = await receiver();
  closers.push(rx.close);
  const set = await call(chatd.url, app, 'POST', '/app/webhooks/set', { url: rx.url, events: ALL });
  assert.equal(set.status, 1, JSON.stringify(set));
  const secret = set.data.secret;
  assert.match(secret, /^whsec_[0-9a-f]{48}$/);
  assert.deepEqual(set.data.events, ALL);
  const list = await call(chatd.url, app, 'GET', '/app/webhooks', {});
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].secret, undefined, 'the secret is shown once');
  assert.equal(list.data[0].status, 'active');

  const tokens = await users(app, 'alice', 'bob', 'carol');
  await sleep(50);
  const wanted = new Set();
  const ok = async (r) => { assert.equal(r.status, 1, JSON.stringify(r)); return r; };
  await ok(await call(chatd.url, app, 'POST', '/group/create', { groupId: 'g', name: 'G', userIds: ['alice', 'bob'] }));
  await ok(await call(chatd.url, app, 'POST', '/group/join', { groupId: 'g', userIds: ['carol'] }));
  await ok(await call(chatd.url, app, 'POST', '/group/update', { groupId: 'g', name: 'Renamed' }));
  // alice has no socket: she is offline for bob's message.
  const m1 = await ok(await call(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'bob', targetId: 'alice', messageType: 1, content: { content: 'hi' } }));
  const alice = await connect(chatd.url, { appId: appId(app), token: tokens.alice, capabilities: ['presence'] });
  await until(() => rx.got.some((g) => g.ev.type === 'user.online'), 'user.online');
  const m2 = await ok(await call(chatd.url, app, 'POST', '/group/send/message', { senderUserId: 'bob', targetId: 'g', messageType: 1, content: { content: 'teh group' } }));
  await ok(await call(chatd.url, app, 'POST', '/message/edit', { userId: 'bob', msgId: m2.data.msgId, conversationType: 2, targetId: 'g', content: { content: 'the group' } }));
  await ok(await call(chatd.url, app, 'POST', '/message/recall', { userId: 'bob', msgId: m1.data.msgId, conversationType: 1, targetId: 'alice' }));
  const sessions = await emit(alice, 'session-list');
  const sid = sessions.data.find((s) => s.targetId === 'g').sid;
  const read = await emit(alice, 'set-session-read', sid);
  assert.equal(read.err, null, JSON.stringify(read));
  await ok(await call(chatd.url, app, 'POST', '/group/remove', { groupId: 'g', userIds: ['carol'] }));
  await ok(await call(chatd.url, app, 'POST', '/group/dismiss', { groupId: 'g' }));
  alice.close();
  for (const t of ALL) wanted.add(t);
  await until(() => [...wanted].every((t) => rx.got.some((g) => g.ev.type === t)), 'every event type: ' +
    [...wanted].filter((t) => !rx.got.some((g) => g.ev.type === t)).join(', '));
  await sleep(300); // nothing more should come

  const ids = new Set();
  for (const g of rx.got) {
    assert.ok(verify(secret, g.headers['chatd-signature'], g.body), 'signature of ' + g.body);
    assert.ok(!verify('whsec_' + '0'.repeat(48), g.headers['chatd-signature'], g.body));
    assert.ok(!verify(secret, g.headers['chatd-signature'], g.body + ' '));
    assert.equal(g.headers['chatd-event-id'], g.ev.id);
    assert.equal(g.headers['content-type'], 'application/json');
    assert.equal(g.ev.appId, appId(app));
    assert.ok(Math.abs(g.ev.createdAt - Date.now()) < 60000);
    assert.ok(!ids.has(g.ev.id), 'delivered twice: ' + g.body);
    ids.add(g.ev.id);
  }
  const byType = (t) => rx.got.filter((g) => g.ev.type === t).map((g) => g.ev);
  const sent = byType('message.sent');
  assert.equal(sent.length, 2);
  assert.equal(sent[0].data.message.msgId, m1.data.msgId);
  assert.deepEqual(sent[0].data.offlineUserIds, ['alice'], 'alice had no socket');
  assert.equal(sent[1].data.message.content.content, 'teh group');
  assert.deepEqual(sent[1].data.offlineUserIds, ['carol'], 'alice was online, carol not');
  assert.equal(byType('message.edited')[0].data.message.content.content, 'the group');
  assert.equal(byType('message.recalled')[0].data.message.msgId, m1.data.msgId);
  assert.deepEqual(byType('group.created')[0].data.userIds, ['alice', 'bob']);
  assert.deepEqual(byType('group.members_changed').map((e) => [e.data.added, e.data.removed]), [[['carol'], []], [[], ['carol']]]);
  assert.equal(byType('group.updated')[0].data.name, 'Renamed');
  assert.equal(byType('user.offline')[0].data.userId, 'alice');

  // Deliveries: listed newest first, paged, filtered; per app.
  const all = await call(chatd.url, app, 'GET', '/app/webhooks/deliveries', { limit: 100 });
  assert.equal(all.status, 1, JSON.stringify(all));
  assert.equal(all.data.deliveries.length, rx.got.length);
  assert.ok(all.data.deliveries.every((d) => d.status === 'delivered' && d.attempts === 1 && d.url === rx.url));
  const p1 = await call(chatd.url, app, 'GET', '/app/webhooks/deliveries', { limit: 3 });
  const p2 = await call(chatd.url, app, 'GET', '/app/webhooks/deliveries', { limit: 3, cursor: p1.data.cursor });
  assert.deepEqual([...p1.data.deliveries, ...p2.data.deliveries].map((d) => d.id), all.data.deliveries.slice(0, 6).map((d) => d.id));
  assert.equal((await call(chatd.url, app, 'GET', '/app/webhooks/deliveries', { status: 'failed' })).data.deliveries.length, 0);
  assert.equal((await call(chatd.url, app, 'GET', '/app/webhooks/deliveries', { status: 'nope' })).httpStatus, 422);

  writeCatalogue(rx.got.map((g) => g.ev));
});

test('routes: validation, other apps, no signature, private addresses', async () => {
  const app = await createApp(chatd.url, 'owner');
  const other = await createApp(chatd.url, 'other');
  const set = await call(chatd.url, app, 'POST', '/app/webhooks/set', { url: 'http://127.0.0.1:9/x', events: ['message.sent'], secret: 'a-secret-of-my-own' });
  assert.equal(set.status, 1, JSON.stringify(set));
  assert.equal(set.data.secret, undefined, 'a secret the app gave is not echoed');
  const id = set.data.id;
  for (const [params, why] of [
    [{ url: 'ftp://example.com/', events: ['message.sent'] }, 'scheme'],
    [{ url: 'http://127.0.0.1:9/y', events: ['nope'] }, 'event'],
    [{ url: 'http://127.0.0.1:9/y', events: [] }, 'no events'],
    [{ url: 'http://127.0.0.1:9/y', events: ['message.sent'], secret: 'short' }, 'secret'],
    [{ url: 'http://127.0.0.1:9/y', events: ['message.before_send'], fail_mode: 'maybe' }, 'fail_mode'],
    [{ url: 'http://127.0.0.1:9/y', events: ['message.before_send'], timeout_ms: 0 }, 'timeout'],
  ]) {
    const r = await call(chatd.url, app, 'POST', '/app/webhooks/set', params);
    assert.equal(r.httpStatus, 422, why + ': ' + JSON.stringify(r));
  }
  for (let i = 0; i < 4; i++) {
    assert.equal((await call(chatd.url, app, 'POST', '/app/webhooks/set', { url: `http://127.0.0.1:9/${i}`, events: ['message.sent'] })).status, 1);
  }
  const sixth = await call(chatd.url, app, 'POST', '/app/webhooks/set', { url: 'http://127.0.0.1:9/6', events: ['message.sent'] });
  assert.match(sixth.message, /at most 5/);
  // Another app sees, deletes and redelivers nothing of this one.
  assert.deepEqual((await call(chatd.url, other, 'GET', '/app/webhooks', {})).data, []);
  assert.equal((await call(chatd.url, other, 'POST', '/app/webhooks/delete', { id })).httpStatus, 404);
  assert.equal((await call(chatd.url, other, 'POST', '/app/webhooks/delete', { url: 'http://127.0.0.1:9/x' })).httpStatus, 404);
  assert.deepEqual((await call(chatd.url, other, 'GET', '/app/webhooks/deliveries', {})).data.deliveries, []);
  assert.equal((await call(chatd.url, other, 'POST', '/app/webhooks/redeliver', { id: '0'.repeat(24) })).httpStatus, 404);
  // No signature.
  for (const [method, path] of [['POST', '/app/webhooks/set'], ['GET', '/app/webhooks'], ['POST', '/app/webhooks/delete'], ['GET', '/app/webhooks/deliveries'], ['POST', '/app/webhooks/redeliver']]) {
    const res = await fetch(chatd.url + path + (method === 'GET' ? `?app_id=${appId(app)}` : ''), method === 'GET' ? {} : {
      method, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ app_id: appId(app), url: 'http://127.0.0.1:9/z', events: ['message.sent'], id }) });
    assert.notEqual((await res.json()).status, 1, path);
  }
  assert.equal((await call(chatd.url, app, 'GET', '/app/webhooks', {})).data.length, 5);
  assert.equal((await call(chatd.url, app, 'POST', '/app/webhooks/delete', { id })).status, 1);
  assert.equal((await call(chatd.url, app, 'GET', '/app/webhooks', {})).data.length, 4);

  // Without CHATD_WEBHOOK_ALLOW_PRIVATE, private addresses are refused.
  const strict = await startChatd({});
  try {
    const a = await createApp(strict.url, 'strict');
    for (const url of ['http://127.0.0.1:9/x', 'http://localhost:9/x', 'http://10.0.0.1/x', 'http://169.254.169.254/latest', 'http://[::1]/x']) {
      const r = await call(strict.url, a, 'POST', '/app/webhooks/set', { url, events: ['message.sent'] });
      assert.equal(r.httpStatus, 422, url);
      assert.match(r.message, /CHATD_WEBHOOK_ALLOW_PRIVATE/);
    }
  } finally {
    await strict.stop();
  }
});

test('a receiver failing five times gets the event once more, and no more; redeliver', async () => {
  const app = await createApp(chatd.url, 'retries');
  let failures = 5;
  const rx = await receiver(() => (failures-- > 0 ? [500, 'no'] : [200, '']));
  closers.push(rx.close);
  const set = await call(chatd.url, app, 'POST', '/app/webhooks/set', { url: rx.url, events: ['message.sent'] });
  await users(app, 'a', 'b');
  const m = await call(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'a', targetId: 'b', messageType: 1, content: { content: 'x' } });
  assert.equal(m.status, 1);
  await until(() => rx.got.length === 6, 'six attempts');
  await sleep(500);
  assert.equal(rx.got.length, 6, 'nothing after the success');
  assert.equal(new Set(rx.got.map((g) => g.ev.id)).size, 1, 'one event');
  assert.ok(rx.got.every((g) => verify(set.data.secret, g.headers['chatd-signature'], g.body)));
  const d = (await call(chatd.url, app, 'GET', '/app/webhooks/deliveries', {})).data.deliveries;
  assert.equal(d.length, 1);
  assert.equal(d[0].status, 'delivered');
  assert.equal(d[0].attempts, 6);
  assert.equal((await call(chatd.url, app, 'POST', '/app/webhooks/redeliver', { id: d[0].id })).status, 1);
  await until(() => rx.got.length === 7, 'redelivered');
  assert.equal(rx.got[6].ev.id, rx.got[0].ev.id, 'the same event id');
  assert.equal(rx.got[6].body, rx.got[5].body, 'the same payload');
  // Once its endpoint is deleted, a delivery cannot be redelivered: a clear
  // error, and it stays as it was.
  for (let i = 0; (await call(chatd.url, app, 'GET', '/app/webhooks/deliveries', {})).data.deliveries[0].status !== 'delivered'; i++) {
    assert.ok(i < 500, 'the redelivery recorded');
    await sleep(20);
  }
  assert.equal((await call(chatd.url, app, 'POST', '/app/webhooks/delete', { id: set.data.id })).status, 1);
  const gone = await call(chatd.url, app, 'POST', '/app/webhooks/redeliver', { id: d[0].id });
  assert.equal(gone.httpStatus, 422);
  assert.match(gone.message, /endpoint was deleted/);
  assert.equal((await call(chatd.url, app, 'GET', '/app/webhooks/deliveries', { status: 'pending' })).data.deliveries.length, 0);
});

test('before-send hook: allow, reject, replace, timeout in both fail modes', async () => {
  const app = await createApp(chatd.url, 'moderated');
  const hook = await receiver(async (ev) => {
    const text = ev.data.message.content.content;
    if (text.includes('slow')) await sleep(400);
    if (text.includes('bad')) return [200, { action: 'reject', reason: 'no bad words' }];
    if (text.includes('darn')) return [200, { action: 'replace', content: { content: text.replace('darn', '****') } }];
    if (text.includes('boom')) return [500, ''];
    return [200, { action: 'allow' }];
  });
  closers.push(hook.close);
  const rx = await receiver();
  closers.push(rx.close);
  const set = await call(chatd.url, app, 'POST', '/app/webhooks/set', { url: hook.url, events: ['message.before_send'], timeout_ms: 200 });
  assert.equal(set.status, 1, JSON.stringify(set));
  assert.equal(set.data.fail_mode, 'fail_closed');
  await call(chatd.url, app, 'POST', '/app/webhooks/set', { url: rx.url, events: ['message.sent'] });
  const tokens = await users(app, 'a', 'b');
  const send = (text) => call(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'a', targetId: 'b', messageType: 1, content: { content: text } });
  const history = async () => (await call(chatd.url, app, 'GET', '/session/messages', { userId: 'b', targetId: 'a', conversationType: 1 })).data.map((m) => m.content.content);

  assert.equal((await send('hello')).status, 1);
  const rejected = await send('a bad word');
  assert.equal(rejected.httpStatus, 403);
  assert.match(rejected.message, /rejected: no bad words/);
  const replaced = await send('darn it');
  assert.equal(replaced.status, 1);
  assert.equal(replaced.data.content.content, '**** it');
  const slow = await send('slow one');
  assert.equal(slow.httpStatus, 503, 'fail_closed: a hook that does not answer in time refuses');
  assert.match(slow.message, /moderation hook did not answer/);
  assert.equal((await send('boom')).httpStatus, 503);

  // Over the socket: the ack carries the reason.
  const a = await connect(chatd.url, { appId: appId(app), token: tokens.a });
  closers.push(async () => a.close());
  const ack = await emit(a, 'send-private-message', { targetId: 'b', messageType: 1, content: { content: 'bad socket' } });
  assert.match(JSON.stringify(ack), /rejected: no bad words/);

  await call(chatd.url, app, 'POST', '/app/webhooks/set', { url: hook.url, events: ['message.before_send'], timeout_ms: 200, fail_mode: 'fail_open' });
  assert.equal((await send('slow but open')).status, 1, 'fail_open: sent');
  assert.equal((await send('boom open')).status, 1);
  assert.equal((await send('still bad')).httpStatus, 403, 'a reply still rejects');

  assert.deepEqual(await history(), ['boom open', 'slow but open', '**** it', 'hello']);
  await until(() => rx.got.length === 4, 'message.sent of the stored ones');
  assert.deepEqual(rx.got.map((g) => g.ev.data.message.content.content).sort(), ['**** it', 'boom open', 'hello', 'slow but open']);
  const metrics = await (await fetch(chatd.url + '/metrics')).text();
  const count = Number(/chatd_webhook_before_send_seconds_count (\d+)/.exec(metrics)?.[1]);
  assert.equal(count, 9, metrics); // every send above called the hook once
  assert.match(metrics, /chatd_webhook_before_send_total\{outcome="reject"\} [1-9]/);
});

test('SIGKILL with 1,000 undelivered events loses none after restart', { timeout: 120000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chatd-webhooks-'));
  const port = await freePort();
  const hookPort = await freePort();
  let node = await startChatd({ env: FAST, dataDir, port });
  try {
    const app = await createApp(node.url, 'durable');
    // Nobody listens on hookPort yet: every attempt fails.
    const set = await call(node.url, app, 'POST', '/app/webhooks/set', { url: `http://127.0.0.1:${hookPort}/hook`, events: ['message.sent'] });
    assert.equal(set.status, 1);
    const senders = Array.from({ length: 10 }, (_, i) => `u${i}`);
    for (const u of [...senders, 'sink']) await call(node.url, app, 'POST', '/user/getToken', { userId: u, name: u, avatarUri: '' });
    const sentIds = new Set();
    await Promise.all(senders.map(async (u) => {
      for (let i = 0; i < 100; i++) {
        const r = await call(node.url, app, 'POST', '/private/send/message', { senderUserId: u, targetId: 'sink', messageType: 1, content: { content: `${u}-${i}` } });
        assert.equal(r.status, 1, JSON.stringify(r));
        sentIds.add(r.data.msgId);
      }
    }));
    assert.equal(sentIds.size, 1000);
    await node.stop('SIGKILL');
    const rx = await receiver(() => [200, ''], hookPort);
    closers.push(rx.close);
    node = await startChatd({ env: FAST, dataDir, port });
    await until(() => new Set(rx.got.map((g) => g.ev.data.message.msgId)).size === 1000,
      'all 1000 delivered', 60000);
    const got = new Set(rx.got.map((g) => g.ev.data.message.msgId));
    for (const id of sentIds) assert.ok(got.has(id), 'lost ' + id);
    // In order per conversation.
    const seqs = {};
    for (const g of rx.got) {
      const m = g.ev.data.message;
      assert.ok(!(m.senderUserId in seqs) || m.seq >= seqs[m.senderUserId], `out of order for ${m.senderUserId}`);
      seqs[m.senderUserId] = m.seq;
    }
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// The event catalogue of docs/webhooks.md, generated from the deliveries:
// the first event of each type, with ids and times replaced by stable
// placeholders.
function writeCatalogue(events) {
  const here = dirname(fileURLToPath(import.meta.url));
  const path = join(here, '..', 'docs', 'webhooks.md');
  const first = new Map();
  for (const e of events) if (!first.has(e.type)) first.set(e.type, e);
  let out = '';
  for (const t of ALL) {
    const e = first.get(t);
    if (!e) continue;
    out += `### \`${t}\`\n\n\`\`\`json\n${JSON.stringify(stable(e), null, 2)}\n\`\`\`\n\n`;
  }
  const begin = '<!-- BEGIN GENERATED EVENTS (test/webhooks.test.mjs) -->\n';
  const end = '<!-- END GENERATED EVENTS -->';
  const doc = readFileSync(path, 'utf8');
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  assert.ok(i >= 0 && j > i, 'docs/webhooks.md has the generated section markers');
  const updated = doc.slice(0, i + begin.length) + '\n' + out + doc.slice(j);
  if (process.env.CHATD_UPDATE_DOCS) writeFileSync(path, updated);
  else assert.equal(doc, updated, 'docs/webhooks.md is stale: run with CHATD_UPDATE_DOCS=1');
}

function stable(v, key) {
  if (Array.isArray(v)) return v.map((x) => stable(x));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, stable(x, k)]));
  if (typeof v === 'string' && /^[0-9a-f]{24}$/.test(v)) return key === 'appId' ? '6b10357be9d55349e76a7add' : '6b10357b' + crypto.createHash('sha1').update(key ?? '').digest('hex').slice(0, 16);
  if (typeof v === 'number' && ['createdAt', 'timestamp', 'at', 'recalledAt', 'editedAt'].includes(key)) return 1764688800000;
  if (key === 'date') return '15:20';
  return v;
}
