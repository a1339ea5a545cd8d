// Presence against a real chatd over socket.io-client 4 and 2: a contact's
// first socket makes them online, their last one (after the grace period)
// offline with lastSeen; strangers are not disclosed; node-chat sockets
// get no push; GET /user/online is signed and per app.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call } from './lib/chatd.mjs';
import { connect, call as emit, collect, until } from './lib/clients.mjs';

let chatd, app, other;
const tokens = {};
const sockets = [];
const dial = async (user, opts = {}) => {
  const s = await connect(chatd.url, { appId: app.appId ?? app.id, token: tokens[user], ...opts });
  sockets.push(s);
  return s;
};
before(async () => {
  chatd = await startChatd({ env: { CHATD_PRESENCE_GRACE: '200ms', CHATD_PRESENCE_MAX_SUBSCRIPTIONS: '3' } });
  app = await createApp(chatd.url, 'presence');
  other = await createApp(chatd.url, 'another app');
  for (const u of ['alice', 'bob', 'carol', 'dave']) {
    const r = await call(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u.toUpperCase(), avatarUri: '' });
    assert.equal(r.status, 1, JSON.stringify(r));
    tokens[u] = r.data.token;
  }
  const g = await call(chatd.url, app, 'POST', '/group/create', { groupId: 'g', name: 'G', userIds: ['alice', 'carol'] });
  assert.equal(g.status, 1, JSON.stringify(g));
  const p = await call(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'bob', targetId: 'alice', messageType: 1, content: { content: 'hi' } });
  assert.equal(p.status, 1, JSON.stringify(p));
});
after(async () => {
  for (const s of sockets) s.close();
  await chatd?.stop();
});

test('presence-subscribe, pushes to declaring sockets, grace, lastSeen, GET /user/online', async () => {
  const alice4 = await dial('alice', { auth: 'auth', capabilities: ['presence'] });
  const alice2 = await dial('alice', { version: 2, capabilities: ['presence'] });
  const plain2 = await dial('alice', { version: 2 }); // node-chat's SDK
  const [p4, p2, pp] = [alice4, alice2, plain2].map((s) => collect(s, 'presence'));

  // dave shares no conversation with alice: left out.
  const sub = await emit(alice4, 'presence-subscribe', { userIds: ['bob', 'carol', 'dave'] });
  assert.equal(sub.err, null, JSON.stringify(sub.err));
  assert.deepEqual(sub.data, [{ userId: 'bob', online: false, lastSeen: 0 }, { userId: 'carol', online: false, lastSeen: 0 }]);
  await emit(alice2, 'presence-subscribe', { userIds: ['bob'] });
  await emit(plain2, 'presence-subscribe', { userIds: ['bob'] });
  const tooMany = await emit(alice2, 'presence-subscribe', { userIds: ['a', 'b', 'c', 'd'] });
  assert.match(tooMany.err.message, /at most 3/);

  const bob = await dial('bob', { version: 2 });
  await until(() => p4.length === 1 && p2.length === 1, 'bob online');
  assert.deepEqual(p4[0], { userId: 'bob', online: true, lastSeen: 0 });
  const closedAt = Date.now();
  bob.close();
  await until(() => p4.length === 2 && p2.length === 2, 'bob offline');
  assert.equal(p4[1].online, false);
  assert.ok(p4[1].lastSeen >= closedAt - 1000 && p4[1].lastSeen <= Date.now(), JSON.stringify(p4[1]));

  const online = await call(chatd.url, app, 'GET', '/user/online', { userIds: ['alice', 'bob'] });
  assert.equal(online.status, 1, JSON.stringify(online));
  assert.deepEqual(online.data.map((s) => [s.userId, s.online]), [['alice', true], ['bob', false]]);
  const elsewhere = await call(chatd.url, other, 'GET', '/user/online', { userIds: ['alice'] });
  assert.equal(elsewhere.data[0].online, false, 'another app sees its own alice');
  const unsigned = await fetch(chatd.url + '/user/online?userIds=alice');
  assert.notEqual((await unsigned.json()).status, 1);
  const none = await call(chatd.url, app, 'GET', '/user/online', {});
  assert.equal(none.httpStatus, 422);

  // Barrier: the node-chat socket never got a push.
  await emit(plain2, 'session-list');
  assert.deepEqual(pp, []);
});

test('no token, another app: no presence of this app', async () => {
  await assert.rejects(connect(chatd.url, { appId: app.appId ?? app.id, token: 'forged', capabilities: ['presence'] }));
  const o = await call(chatd.url, other, 'POST', '/user/getToken', { userId: 'alice', name: 'Other Alice', avatarUri: '' });
  const otherAlice = await connect(chatd.url, { appId: other.appId ?? other.id, token: o.data.token, capabilities: ['presence'] });
  sockets.push(otherAlice);
  const sub = await emit(otherAlice, 'presence-subscribe', { userIds: ['bob', 'carol'] });
  assert.deepEqual(sub, { err: null, data: [] });
});
