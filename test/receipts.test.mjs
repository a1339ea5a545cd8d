// Typing indicators, read receipts and message-readers against a real
// chatd, over socket.io-client 4 and 2: sockets that declared typing and
// receipts get the pushes, node-chat sockets (no capabilities) get none,
// and other users, other apps and non-members are refused.
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
  chatd = await startChatd({ env: { CHATD_TYPING_MAX_GROUP: '3' } });
  app = await createApp(chatd.url, 'receipts');
  other = await createApp(chatd.url, 'another app');
  for (const u of ['alice', 'bob', 'carol', 'dave']) {
    const r = await call(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u.toUpperCase(), avatarUri: '' });
    assert.equal(r.status, 1, JSON.stringify(r));
    tokens[u] = r.data.token;
  }
  const o = await call(chatd.url, other, 'POST', '/user/getToken', { userId: 'alice', name: 'Other Alice', avatarUri: '' });
  tokens.otherAlice = o.data.token;
  const g = await call(chatd.url, app, 'POST', '/group/create', { groupId: 'big', name: 'Big', userIds: ['alice', 'bob', 'carol', 'dave'] });
  assert.equal(g.status, 1, JSON.stringify(g));
});
after(async () => {
  for (const s of sockets) s.close();
  await chatd?.stop();
});

const caps = ['typing', 'receipts'];

test('typing and read-receipt reach declaring sockets only; message-readers counts', async () => {
  const alice = await dial('alice', { auth: 'auth', capabilities: caps });
  const bob4 = await dial('bob', { capabilities: caps });
  const bob2 = await dial('bob', { version: 2, capabilities: caps });
  const bobPlain2 = await dial('bob', { version: 2 }); // node-chat's SDK
  const bobPlain4 = await dial('bob');
  const dave = await dial('dave', { capabilities: caps });
  const got = (s) => ({ typing: collect(s, 'typing'), stop: collect(s, 'typing-stop'), receipt: collect(s, 'read-receipt') });
  const [a, b4, b2, p2, p4] = [alice, bob4, bob2, bobPlain2, bobPlain4].map(got);

  const sent = await emit(alice, 'send-private-message', { targetId: 'bob', messageType: 1, content: { content: 'hi' } });
  assert.equal(sent.err, null, JSON.stringify(sent.err));
  const sid = sent.data.sendSession.sid;
  const list = await emit(bob4, 'session-list');
  const bobSid = list.data.find((s) => s.targetId === 'alice').sid;

  const t = await emit(alice, 'typing', { sid });
  assert.deepEqual(t, { err: null, data: { sent: true, expiresIn: 6000 } });
  await until(() => b4.typing.length === 1 && b2.typing.length === 1, 'typing pushes');
  assert.deepEqual(b4.typing[0], { sid: bobSid, userId: 'alice', expiresIn: 6000 });
  assert.deepEqual(b2.typing[0], b4.typing[0]);
  await emit(alice, 'typing-stop', sid);
  await until(() => b4.stop.length === 1 && b2.stop.length === 1, 'typing-stop pushes');
  assert.deepEqual(b4.stop[0], { sid: bobSid, userId: 'alice' });

  // bob reads on his node-chat device: alice's receipts socket is told.
  const read = await emit(bobPlain2, 'set-session-read', bobSid);
  assert.equal(read.err, null);
  await until(() => a.receipt.length === 1, 'read-receipt');
  assert.deepEqual(a.receipt[0], { sid, userId: 'bob', readSeq: sent.data.seq });
  const mine = await emit(alice, 'session-list');
  assert.equal(mine.data.find((s) => s.sid === sid).peerReadSeq, sent.data.seq);
  const readers = await emit(alice, 'message-readers', { sid, msgId: sent.data.msgId });
  assert.deepEqual(readers, { err: null, data: { readCount: 1, memberCount: 1, readers: [{ userId: 'bob', readSeq: sent.data.seq }] } });

  // Over CHATD_TYPING_MAX_GROUP members, typing is acknowledged, not sent.
  const g = await emit(alice, 'session-list');
  const bigSid = g.data.find((s) => s.targetId === 'big').sid;
  assert.deepEqual((await emit(alice, 'typing', bigSid)).data, { sent: false, expiresIn: 6000 });

  // Barrier: an ack on each node-chat socket after all of it; they got none.
  for (const s of [bobPlain2, bobPlain4]) await emit(s, 'session-list');
  for (const c of [p2, p4]) assert.deepEqual(c, { typing: [], stop: [], receipt: [] });
  assert.equal(a.typing.length + b4.receipt.length, 0, 'nobody is told of their own typing or reads');
  void dave;
});

test('other users, other apps and non-members are refused', async () => {
  const alice = await dial('alice', { capabilities: caps });
  const dave = await dial('dave', { capabilities: caps });
  const carol = await dial('carol', { capabilities: caps });
  const otherAlice = await connect(chatd.url, { appId: other.appId ?? other.id, token: tokens.otherAlice, capabilities: caps });
  sockets.push(otherAlice);
  const sent = await emit(alice, 'send-private-message', { targetId: 'carol', messageType: 1, content: { content: 'x' } });
  const sid = sent.data.sendSession.sid;
  for (const [s, ev, arg] of [
    [dave, 'typing', { sid }], [dave, 'typing-stop', { sid }], [dave, 'message-readers', { sid, msgId: sent.data.msgId }],
    [carol, 'message-readers', { sid, msgId: sent.data.msgId }], // alice's sid, not carol's
    [otherAlice, 'typing', { sid }], [otherAlice, 'message-readers', { sid, msgId: sent.data.msgId }],
  ]) {
    const r = await emit(s, ev, arg);
    assert.ok(r.err, `${ev} must be refused`);
    assert.match(r.err.message, /not found/);
  }
  const bad = await emit(alice, 'message-readers', { sid, msgId: 'nope' });
  assert.match(bad.err.message, /msgId/);
  await assert.rejects(connect(chatd.url, { appId: app.appId ?? app.id, token: 'forged', capabilities: caps }));
});
