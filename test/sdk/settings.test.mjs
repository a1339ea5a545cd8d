// Conversation settings through the SDK: a client that was offline while
// another device of the same user hid, pinned or muted a conversation
// catches up on reconnecting (the session list it reloads replaces its
// settings), and a hidden conversation comes back with the next message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp } from '../lib/chatd.mjs';
import { tokenFor, client, until } from './helpers.mjs';

let chatd, app;
const tokens = {};
const open = [];
before(async () => {
  chatd = await startChatd();
  app = await createApp(chatd.url, 'sdk settings');
  for (const u of ['ann', 'ben', 'cat']) tokens[u] = await tokenFor(chatd.url, app, u);
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

// offline runs fn while c is cut off, then waits for c to be back.
async function offline(c, fn) {
  let back = false;
  const onConnect = (e) => { if (e.reconnect) back = true; };
  c.on('connect', onConnect);
  c.net.offline = true;
  c.net.cut();
  await until(() => c.state === 'reconnecting', 'reconnecting');
  await fn();
  c.net.offline = false;
  await until(() => back, 'reconnected');
  c.off?.('connect', onConnect);
}

test('settings changed on another device while offline converge on reconnect', async () => {
  const ben = await dial('ben');
  const cat = await dial('cat');
  await ben.sendText('ann', 'from ben');
  await cat.sendText('ann', 'from cat');
  const ann = await dial('ann');
  const other = await dial('ann');
  const sidOf = (c, peer) => c.conversations().find((s) => s.targetId === peer)?.sid;
  const benSid = sidOf(ann, 'ben');
  const catSid = sidOf(ann, 'cat');
  assert.ok(benSid && catSid, 'both conversations listed');
  const listed = () => ann.conversations().map((s) => s.targetId);

  await offline(ann, async () => {
    await other.hide(benSid);
    await other.pin(catSid);
    await other.mute(catSid);
  });
  assert.deepEqual(listed(), ['cat'], 'the hidden conversation left the list');
  assert.equal(ann.conversation(catSid).pinned, true);
  assert.equal(ann.conversation(catSid).muted, true);
  assert.ok(ann.conversation(catSid).pinnedAt > 0);

  // The next message brings the hidden conversation back.
  await ben.sendText('ann', 'again');
  await until(() => listed().includes('ben'), 'ben back in the list');
  assert.deepEqual(listed(), ['cat', 'ben'], 'pinned first');

  await offline(ann, async () => {
    await other.pin(catSid, false);
    await other.mute(catSid, false);
  });
  assert.equal(ann.conversation(catSid).pinned, false);
  assert.equal(ann.conversation(catSid).muted, false);
  assert.equal(ann.conversation(catSid).pinnedAt, undefined);
  assert.deepEqual(listed(), ['ben', 'cat'], 'most recent first once unpinned');

  // A hide on this device while the list is reloaded stays a hide, and a
  // conversation the list shows again is shown.
  await ann.hide(catSid);
  assert.deepEqual(listed(), ['ben']);
  await ann.refreshConversations();
  assert.deepEqual(listed(), ['ben']);
});
