// Message search over Socket.IO (v4) and the signed HTTP API, against a real
// chatd: Chinese 1-2 character queries, Latin words with case and
// diacritics folded, phrases, paging; and the authorization matrix (another
// user, another app, a removed member, no token or signature).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call } from './lib/chatd.mjs';
import { connect, call as emit } from './lib/clients.mjs';

let chatd, app, other;
const tokens = {};
before(async () => {
  chatd = await startChatd();
  app = await createApp(chatd.url, 'search');
  other = await createApp(chatd.url, 'another app');
  for (const u of ['alice', 'bob', 'carol', 'dave']) {
    const r = await call(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u, avatarUri: '' });
    assert.equal(r.status, 1, JSON.stringify(r));
    tokens[u] = r.data.token;
  }
  await call(chatd.url, other, 'POST', '/user/getToken', { userId: 'bob', name: 'Other Bob', avatarUri: '' });
  const g = await call(chatd.url, app, 'POST', '/group/create', { groupId: 'g', name: 'G', userIds: ['alice', 'bob', 'carol'] });
  assert.equal(g.status, 1, JSON.stringify(g));
  for (const text of ['我在北京工作', 'Meeting in Zürich', 'the quick brown fox', '北京烤鸭 and dumplings']) {
    const r = await call(chatd.url, app, 'POST', '/group/send/message',
      { senderUserId: 'alice', targetId: 'g', messageType: 1, content: { content: text } });
    assert.equal(r.status, 1, JSON.stringify(r));
  }
});
after(async () => { await chatd?.stop(); });

const httpSearch = (params, a = app) => call(chatd.url, a, 'GET', '/message/search', params);

test('socket search-messages: Chinese, Latin, phrases, highlights and paging', async () => {
  const bob = await connect(chatd.url, { version: 4, appId: app.appId, token: tokens.bob, auth: 'auth' });
  try {
    const texts = async (q, extra = {}) => {
      const r = await emit(bob, 'search-messages', { q, ...extra });
      assert.equal(r.err, null, JSON.stringify(r.err));
      return r.data.hits.map((h) => h.content.content);
    };
    assert.deepEqual(await texts('北京'), ['北京烤鸭 and dumplings', '我在北京工作']);
    assert.deepEqual(await texts('京'), ['北京烤鸭 and dumplings', '我在北京工作']);
    assert.deepEqual(await texts('zurich'), ['Meeting in Zürich']);
    assert.deepEqual(await texts('FOX quick'), ['the quick brown fox']);
    assert.deepEqual(await texts('"brown quick"'), []);
    assert.deepEqual(await texts('meet'), ['Meeting in Zürich']); // a word's prefix…
    assert.deepEqual(await texts('eeting'), []); // …not any substring of it
    const r = await emit(bob, 'search-messages', { q: '北京', limit: 1 });
    const [hit] = r.data.hits;
    assert.equal(hit.snippet.slice(hit.highlights[0][0], hit.highlights[0][1]), '北京');
    assert.ok(hit.sid && hit.seq === 4, JSON.stringify(hit));
    const next = await emit(bob, 'search-messages', { q: '北京', limit: 1, before: r.data.next });
    assert.deepEqual(next.data.hits.map((h) => h.seq), [1]);
    assert.match((await emit(bob, 'search-messages', { q: 'a' })).err?.message ?? '', /too short/);
  } finally { bob.close(); }
});

test('HTTP /message/search with the authorization matrix', async () => {
  const ok = await httpSearch({ userId: 'bob', q: '北京', targetId: 'g', conversationType: 2 });
  assert.equal(ok.status, 1, JSON.stringify(ok));
  assert.equal(ok.data.hits.length, 2);
  // A non-member, and the same user id in another app, find nothing.
  assert.equal((await httpSearch({ userId: 'dave', q: '北京' })).data.hits.length, 0);
  assert.equal((await httpSearch({ userId: 'dave', q: '北京', targetId: 'g', conversationType: 2 })).httpStatus, 403);
  const otherApp = await httpSearch({ userId: 'bob', q: '北京' }, other);
  assert.equal(otherApp.status, 1, JSON.stringify(otherApp));
  assert.equal(otherApp.data.hits.length, 0);
  // No signature.
  const unsigned = await fetch(chatd.url + '/message/search?' + new URLSearchParams({ app_id: app.appId,
    time_stamp: String(Date.now()), nonce_str: 'n' + Math.random(), sign: '0'.repeat(32), userId: 'bob', q: '北京' }));
  assert.equal(unsigned.status, 400);
  // A removed member finds nothing, over HTTP and the socket.
  const carol = await connect(chatd.url, { version: 4, appId: app.appId, token: tokens.carol });
  try {
    assert.equal((await emit(carol, 'search-messages', { q: '北京' })).data.hits.length, 2);
    const rm = await call(chatd.url, app, 'POST', '/group/remove', { groupId: 'g', userIds: ['carol'] });
    assert.equal(rm.status, 1, JSON.stringify(rm));
    assert.equal((await emit(carol, 'search-messages', { q: '北京' })).data.hits.length, 0);
    assert.equal((await httpSearch({ userId: 'carol', q: '北京' })).data.hits.length, 0);
  } finally { carol.close(); }
  // No token: the socket is refused before any event.
  await assert.rejects(connect(chatd.url, { version: 4, appId: app.appId, token: 'nope', timeout: 3000 }));
});

test('aroundSeq: session-message-list and sync open the conversation at a hit', async () => {
  const bob = await connect(chatd.url, { version: 4, appId: app.appId, token: tokens.bob });
  try {
    const r = await emit(bob, 'search-messages', { q: 'zurich' });
    const [hit] = r.data.hits;
    assert.equal(hit.seq, 2, JSON.stringify(hit));
    const list = await emit(bob, 'session-message-list', { sid: hit.sid, aroundSeq: hit.seq, limit: 3 });
    assert.equal(list.err, null, JSON.stringify(list.err));
    assert.deepEqual(list.data.map((m) => m.seq), [3, 2, 1]); // newest first, like every history page
    const sync = await emit(bob, 'sync', { sid: hit.sid, aroundSeq: hit.seq, limit: 2 });
    assert.deepEqual(sync.data.map((m) => m.seq), [2, 3]); // oldest first, like sync
    assert.match((await emit(bob, 'sync', { sid: hit.sid, aroundSeq: 99 })).err?.message ?? '', /not found/);
    // Another user's session is nobody's to open.
    const dave = await connect(chatd.url, { version: 4, appId: app.appId, token: tokens.dave });
    try {
      assert.match((await emit(dave, 'session-message-list', { sid: hit.sid, aroundSeq: 2 })).err?.message ?? '', /not found/);
    } finally { dave.close(); }
  } finally { bob.close(); }
});
