// The SDK's exactly-once delivery against a real chatd, with the client's
// network a TCP proxy the test cuts: the reproduction of issue 19 (the first
// message of a new conversation lost across a reconnect) and the user's own
// messages reaching their other devices.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call as http } from '../lib/chatd.mjs';
import { tokenFor, client, record, until } from './helpers.mjs';
import { TcpProxy } from './proxy.mjs';

let chatd, app;
const tokens = {};
const open = [];

before(async () => {
  chatd = await startChatd({ env: { CHATD_USER_SEND_RATE: '0' } });
  app = await createApp(chatd.url, 'exactly-once');
  for (const u of ['a', 'b', 'c', 'd']) tokens[u] = await tokenFor(chatd.url, app, u);
});
after(async () => {
  for (const x of open) await x.close();
  await chatd?.stop();
});

async function proxied(user) {
  const proxy = await new TcpProxy({ host: '127.0.0.1', port: chatd.port }).listen();
  const c = client(proxy.url, app.appId, tokens[user], { userId: user });
  open.push(c, proxy);
  const got = record(c);
  await c.connect();
  return { c, proxy, got };
}

function sendOverHTTP(from, to, text) {
  return http(chatd.url, app, 'POST', '/private/send/message', { senderUserId: from, targetId: to, messageType: 1, content: { content: text } });
}

test('issue 19: the first message of a conversation started while offline is emitted once, before the reply queued offline', { timeout: 30000 }, async () => {
  const { c: b, proxy, got } = await proxied('b');
  proxy.offline = true;
  proxy.cut('reset');
  await until(() => b.state === 'reconnecting', 'b notices the drop');

  const hi = await sendOverHTTP('a', 'b', 'hi');
  assert.equal(hi.status, 1);
  assert.equal(hi.data.seq, 1, 'a new conversation');
  const reply = b.sendText('a', 'reply'); // queued by the SDK
  proxy.offline = false;
  const r = await reply;
  assert.equal(r.seq, 2);

  // A later message is the barrier: messages are emitted in seq order, so
  // once seq 3 is out, seq 1 was either emitted or lost.
  const later = await sendOverHTTP('a', 'b', 'later');
  await until(() => got.some((m) => m.msgId === later.data.msgId), 'b receives the later message');
  assert.deepEqual(got.map((m) => [m.seq, m.content.content]), [[1, 'hi'], [2, 'reply'], [3, 'later']]);
  assert.ok(proxy.accepted >= 2, 'b went through the proxy again');
});

test('a user\'s other device emits what the first one and the HTTP API sent for them, once and in order', { timeout: 30000 }, async () => {
  const { c: c1 } = await proxied('c');
  const { c: c2, got: got2 } = await proxied('c');
  const { got: gotD } = await proxied('d');
  const first = await c1.sendText('d', 'from the phone');
  const second = await sendOverHTTP('c', 'd', 'from the backend');
  const third = await sendOverHTTP('d', 'c', 'from d');
  await until(() => got2.some((m) => m.msgId === third.data.msgId), 'the second device receives d\'s answer');
  assert.deepEqual(got2.map((m) => m.msgId), [first.msgId, second.data.msgId, third.data.msgId]);
  assert.deepEqual(got2.map((m) => m.senderUserId), ['c', 'c', 'd']);
  assert.ok(got2.every((m) => m.own === undefined), 'no wire-only fields');
  assert.equal(c2.conversation(got2[0].sid).unread, 1, 'only d\'s message is unread');
  await until(() => gotD.length === 3, 'd receives all three');
  assert.deepEqual(gotD.map((m) => m.seq), [1, 2, 3]);
});
