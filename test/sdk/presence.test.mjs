// Typing, read receipts and presence through the SDK: the events it emits,
// peerReadSeq kept current, indicators that expire, presence renewed after
// a reconnect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call as http } from '../lib/chatd.mjs';
import { tokenFor, client, until } from './helpers.mjs';

let chatd, app;
const tokens = {};
const open = [];
before(async () => {
  chatd = await startChatd({ env: { CHATD_PRESENCE_GRACE: '100ms' } });
  app = await createApp(chatd.url, 'sdk presence');
  for (const u of ['ann', 'ben']) tokens[u] = await tokenFor(chatd.url, app, u);
});
after(async () => {
  for (const c of open) c.close();
  await chatd?.stop();
});

async function dial(user) {
  const c = client(chatd.url, app.appId, tokens[user], { userId: user });
  open.push(c);
  await c.connect();
  return c;
}

test('typing, read-receipt and presence through the SDK', async () => {
  const ann = await dial('ann');
  const m = await ann.sendText('ben', 'hello');
  const ben = await dial('ben');
  const sid = m.sid ?? ann.conversations().find((c) => c.targetId === 'ben').sid;
  const benSid = ben.conversations().find((c) => c.targetId === 'ann').sid;

  const typing = [];
  ben.on('typing', (t) => typing.push(t));
  await ann.typing(sid);
  await ann.typing(sid); // throttled: not sent again
  await until(() => typing.length === 1, 'typing');
  assert.deepEqual(typing[0], { sid: benSid, userId: 'ann', typing: true, expiresIn: 6000 });
  assert.deepEqual(ben.typingUsers(benSid), ['ann']);
  await ann.typingStop(sid);
  await until(() => typing.length === 2, 'typing stopped');
  assert.equal(typing[1].typing, false);
  assert.deepEqual(ben.typingUsers(benSid), []);

  const receipts = [];
  ann.on('read-receipt', (r) => receipts.push(r));
  await ben.markRead(benSid);
  await until(() => receipts.length === 1, 'read-receipt');
  assert.deepEqual(receipts[0], { sid, userId: 'ben', readSeq: m.seq });
  assert.equal(ann.conversation(sid).peerReadSeq, m.seq);
  assert.deepEqual(await ann.messageReaders(sid, m.msgId), { readCount: 1, memberCount: 1, readers: [{ userId: 'ben', readSeq: m.seq }] });

  const presence = [];
  ann.on('presence', (p) => presence.push(p));
  const states = await ann.subscribePresence(['ben', 'stranger']);
  assert.deepEqual(states.map((s) => [s.userId, s.online]), [['ben', true]]);
  ben.close();
  await until(() => presence.length === 1, 'ben offline');
  assert.equal(presence[0].online, false);
  // ann reconnects: the subscription is renewed.
  ann.net.cut();
  await until(() => ann.state === 'connected', 'ann back', 15000);
  const ben2 = await dial('ben');
  await until(() => presence.at(-1)?.online === true, 'ben online again'); // a push, or the renewed state
  void ben2;
});
