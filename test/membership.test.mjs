// Hardening seen from node-chat's clients (socket.io-client 2) and stock
// socket.io-client 4: a group member reads from when they (last) joined, every
// socket event has a budget, a signed request cannot be replayed after a
// restart, and a route-bound app refuses node-chat's recipe.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import qs from 'qs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChatd, createApp, call as http, signedParams, ADMIN_KEY } from './lib/chatd.mjs';
import { connect, call } from './lib/clients.mjs';

describe('group history follows membership', () => {
  const JOINED = 'late, back joined the group';
  let chatd, app;
  const tok = {};
  before(async () => {
    chatd = await startChatd();
    app = await createApp(chatd.url, 'membership');
    for (const u of ['owner', 'late', 'back']) {
      tok[u] = (await http(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u, avatarUri: '' })).data.token;
    }
    const ok = async (path, p) => assert.equal((await http(chatd.url, app, 'POST', path, p)).status, 1, path);
    await ok('/group/create', { groupId: 'g', name: 'G', userIds: ['owner', 'back'] });
    await ok('/group/send/message', { senderUserId: 'owner', targetId: 'g', messageType: 1, content: { content: 'before' } });
    await ok('/group/remove', { groupId: 'g', userIds: ['back'] });
    await ok('/group/send/message', { senderUserId: 'owner', targetId: 'g', messageType: 1, content: { content: 'while out' } });
    await ok('/group/join', { groupId: 'g', userIds: ['late', 'back'] });
    await ok('/group/send/message', { senderUserId: 'owner', targetId: 'g', messageType: 1, content: { content: 'after' } });
  });
  after(async () => { await chatd?.stop(); });

  for (const version of [2, 4]) {
    test(`socket.io ${version}: sync, history and the session start at the join`, async () => {
      for (const user of ['late', 'back']) {
        const s = await connect(chatd.url, { version, appId: app.appId, token: tok[user] });
        try {
          const list = (await call(s, 'session-list')).data;
          const g = list.find((x) => x.targetId === 'g');
          // The join itself is in the timeline as a notice (docs/groups.md), and unread.
          assert.equal(g.unread, 2, `${user}: unread`);
          assert.equal(g.lastMsg.content, 'after');
          const synced = (await call(s, 'sync', { sid: g.sid, afterSeq: 0 })).data.map((m) => m.content.content);
          assert.deepEqual(synced, [JOINED, 'after'], `${user}: sync`);
          const page = (await call(s, 'session-message-list', { sid: g.sid, limit: 50 })).data.map((m) => m.content.content);
          assert.deepEqual(page, ['after', JOINED], `${user}: history`);
        } finally { s.close(); }
      }
    });
  }

  test('HTTP history too, unless the join grants the whole history', async () => {
    const h = await http(chatd.url, app, 'GET', '/session/messages', { userId: 'late', targetId: 'g', conversationType: 2 });
    assert.deepEqual(h.data.map((m) => m.content.content), ['after', JOINED]);
    await http(chatd.url, app, 'POST', '/group/join', { groupId: 'g', userIds: ['late'], fullHistory: true });
    const all = await http(chatd.url, app, 'GET', '/session/messages', { userId: 'late', targetId: 'g', conversationType: 2 });
    assert.deepEqual(all.data.map((m) => m.content.content), ['after', JOINED, 'while out', 'back was removed from the group', 'before']);
  });
});

test('every socket event has a per-user budget, with a clear error ack', async () => {
  const chatd = await startChatd({ env: { CHATD_USER_EVENT_RATE: '0.001', CHATD_USER_EVENT_BURST: '5' } });
  try {
    const app = await createApp(chatd.url, 'events');
    const token = (await http(chatd.url, app, 'POST', '/user/getToken', { userId: 'u', name: 'u', avatarUri: '' })).data.token;
    const s = await connect(chatd.url, { version: 2, appId: app.appId, token });
    try {
      const replies = [];
      for (let i = 0; i < 8; i++) replies.push(await call(s, i % 2 ? 'set-session-read' : 'session-list', i % 2 ? '0123456789abcdef01234567' : undefined));
      const limited = replies.filter((r) => r.err && /too many socket events/.test(r.err.message));
      assert.equal(limited.length, 3, JSON.stringify(replies.map((r) => r.err)));
      assert.equal(limited[0].err.status, 1000);
      assert.ok(s.connected, 'the socket stays open');
    } finally { s.close(); }
  } finally { await chatd.stop(); }
});

test('a signed request replayed after a restart is refused', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chatd-replay-'));
  let chatd = await startChatd({ dataDir });
  try {
    const app = await createApp(chatd.url, 'replay');
    for (const u of ['a', 'b']) await http(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u, avatarUri: '' });
    const body = JSON.stringify(signedParams(app, { senderUserId: 'a', targetId: 'b', messageType: 1, content: { content: 'once' } }));
    const post = async () => (await fetch(chatd.url + '/private/send/message', { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json();
    assert.equal((await post()).status, 1);
    await chatd.stop();
    chatd = await startChatd({ dataDir });
    const again = await post();
    assert.equal(again.status, 1004);
    assert.match(again.message, /nonce_str already used/);
    const h = await http(chatd.url, app, 'GET', '/session/messages', { userId: 'a', targetId: 'b', conversationType: 1 });
    assert.equal(h.data.length, 1, 'the replay stored nothing');
  } finally {
    await chatd.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('an app with route-bound signatures refuses node-chat\'s recipe and other routes', async () => {
  const chatd = await startChatd();
  try {
    const app = await createApp(chatd.url, 'strict');
    const upd = await fetch(chatd.url + '/app/update', {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + ADMIN_KEY },
      body: JSON.stringify({ appId: app.appId, signRoute: true }),
    });
    assert.equal((await upd.json()).status, 1);
    const plain = await http(chatd.url, app, 'POST', '/user/getToken', { userId: 'u', name: 'u', avatarUri: '' });
    assert.equal(plain.status, 1004);
    // The route-bound recipe: "<METHOD> <path>\n" before node-chat's string.
    const routed = (route) => {
      const p = { userId: 'u', name: 'u', avatarUri: '', app_id: app.appId, time_stamp: String(Date.now()), nonce_str: crypto.randomBytes(8).toString('hex') };
      const sorted = {};
      for (const k of Object.keys(p).sort()) sorted[k] = p[k];
      p.sign = crypto.createHash('md5').update(route + '\n' + qs.stringify(sorted) + '&app_key=' + app.appSecret).digest('hex');
      return p;
    };
    const post = async (p) => (await fetch(chatd.url + '/user/getToken', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(p) })).json();
    assert.equal((await post(routed('POST /user/sessions'))).status, 1004);
    assert.equal((await post(routed('POST /user/getToken'))).status, 1);
  } finally { await chatd.stop(); }
});
