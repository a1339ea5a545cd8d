// Conversation settings (pin, mute, hide, draft) synced to a user's other
// devices, blocking, group read receipts and lastSeen across a restart,
// against a real chatd: through the SDK, raw sockets and the signed API,
// with the authorization cases (another user, another app, a removed
// member, no token, no signature).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChatd, createApp, call as http } from './lib/chatd.mjs';
import { connect, call, open as openSocket } from './lib/clients.mjs';
import { tokenFor, client, until } from './sdk/helpers.mjs';

let chatd, app, other;
const tokens = {};
const opened = [];
before(async () => {
  chatd = await startChatd({ env: { CHATD_PRESENCE_GRACE: '100ms' } });
  app = await createApp(chatd.url, 'settings');
  other = await createApp(chatd.url, 'settings other');
  for (const u of ['ann', 'ben', 'cid', 'dan']) tokens[u] = await tokenFor(chatd.url, app, u);
});
after(async () => {
  for (const c of opened) c.close();
  await chatd?.stop();
});

async function dial(user) {
  const c = client(chatd.url, app.appId, tokens[user], { userId: user });
  opened.push(c);
  await c.connect();
  return c;
}
const text = (s) => ({ content: s });

test('pin, mute, draft and hide are synced to the user\'s other device', async () => {
  const ben = await dial('ben');
  await ben.sendText('ann', 'first');
  await http(chatd.url, app, 'POST', '/group/create', { groupId: 'g1', name: 'G1', userIds: ['ann', 'ben'] });
  await ben.send('g1', 1, text('group hello'), { group: true });
  const ann1 = await dial('ann');
  const ann2 = await dial('ann');
  const sid = ann1.conversations().find((c) => c.targetId === 'ben').sid;
  const gsid = ann1.conversations().find((c) => c.targetId === 'g1').sid;
  assert.equal(ann1.conversations()[0].sid, gsid, 'the group is the most recent');

  const updates = [];
  ann2.on('session-updated', (u) => updates.push(u));
  const st = await ann1.pin(sid);
  assert.equal(st.pinned, true);
  await until(() => updates.length === 1, 'session-updated on the other device');
  assert.deepEqual(updates[0], st);
  assert.equal(ann2.conversations()[0].sid, sid, 'pinned first on the other device');
  assert.equal(ann1.conversations()[0].sid, sid, 'pinned first on this device');
  // Pinned first in session-list from the server too, most recent pin first.
  await ann1.pin(gsid);
  let list = await ann1.refreshConversations();
  assert.deepEqual(list.map((c) => c.sid), [gsid, sid]);
  await ann1.pin(gsid, false);
  list = await ann2.refreshConversations();
  assert.deepEqual(list.map((c) => [c.sid, c.pinned]), [[sid, true], [gsid, false]]);

  // Mute: pushes still arrive, marked muted; the total leaves them out.
  await ann2.mute(sid);
  await ann2.setDraft(sid, 'half a thought');
  await until(() => ann1.conversation(sid).muted && ann1.conversation(sid).draft === 'half a thought', 'mute and draft synced');
  const raw = await connect(chatd.url, { appId: app.appId, token: tokens.ann, capabilities: ['session-settings'] });
  const plain = await connect(chatd.url, { appId: app.appId, token: tokens.ann });
  const rawGot = [], plainGot = [];
  raw.on('message', (m) => rawGot.push(m));
  plain.on('message', (m) => plainGot.push(m));
  await ben.sendText('ann', 'while muted');
  await until(() => rawGot.length === 1 && plainGot.length === 1, 'pushes of the muted session');
  assert.equal(rawGot[0].data.muted, true);
  assert.equal(plainGot[0].data.muted, undefined, 'node-chat clients see no new field');
  const total = await ann1.unreadTotal();
  assert.deepEqual(total, { unread: 1, mentionedUnread: 0, sessions: 1 }, 'only the group counts');
  raw.close();
  plain.close();

  // Hide: out of both devices' lists; back with the next message.
  await ann1.hide(sid);
  await until(() => !ann2.conversations().some((c) => c.sid === sid), 'hidden on the other device');
  list = (await http(chatd.url, app, 'GET', '/user/sessions', { userId: 'ann' })).data;
  assert.deepEqual(list.map((c) => c.sid), [gsid]);
  await ben.sendText('ann', 'back again');
  await until(() => ann2.conversations().some((c) => c.sid === sid), 'back on the next message');
  list = (await http(chatd.url, app, 'GET', '/user/sessions', { userId: 'ann' })).data;
  assert.equal(list[0].sid, sid);
  assert.equal(list[0].pinned, true);
  assert.equal(list[0].muted, true);
});

test('the signed API changes settings; others cannot', async () => {
  const benSessions = (await http(chatd.url, app, 'GET', '/user/sessions', { userId: 'ben' })).data;
  const sid = benSessions.find((c) => c.targetId === 'ann').sid;
  let r = await http(chatd.url, app, 'POST', '/session/update', { userId: 'ben', sid, pinned: true, draft: 'x' });
  assert.equal(r.status, 1, JSON.stringify(r));
  assert.equal(r.data.pinned, true);
  assert.equal(r.data.draft, 'x');
  r = await http(chatd.url, app, 'POST', '/session/hide', { userId: 'ben', sid });
  assert.equal(r.data.hidden, true);
  // Another user, another app, bad input, no signature.
  r = await http(chatd.url, app, 'POST', '/session/update', { userId: 'cid', sid, muted: true });
  assert.equal(r.httpStatus, 404, JSON.stringify(r));
  r = await http(chatd.url, other, 'POST', '/session/update', { userId: 'ben', sid, muted: true });
  assert.equal(r.httpStatus, 404, JSON.stringify(r));
  r = await http(chatd.url, other, 'POST', '/session/hide', { userId: 'ben', sid });
  assert.equal(r.httpStatus, 404, JSON.stringify(r));
  r = await http(chatd.url, app, 'POST', '/session/update', { userId: 'ben', sid, muted: 'perhaps' });
  assert.equal(r.httpStatus, 422, JSON.stringify(r));
  r = await http(chatd.url, app, 'POST', '/session/update', { userId: 'ben', sid });
  assert.equal(r.httpStatus, 422, JSON.stringify(r));
  for (const path of ['/session/update', '/session/hide', '/user/block', '/user/unblock']) {
    const res = await fetch(chatd.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'ben', sid, blockedUserIds: ['ann'] }) });
    assert.notEqual((await res.json()).status, 1, path + ' unsigned');
  }
  const res = await fetch(chatd.url + '/user/blocked?userId=ben');
  assert.notEqual((await res.json()).status, 1, '/user/blocked unsigned');
  // A removed member's group session is gone.
  await http(chatd.url, app, 'POST', '/group/create', { groupId: 'g2', name: 'G2', userIds: ['ben', 'dan'] });
  const dsid = (await http(chatd.url, app, 'GET', '/user/sessions', { userId: 'dan' })).data.find((c) => c.targetId === 'g2').sid;
  const dan = await connect(chatd.url, { appId: app.appId, token: tokens.dan });
  assert.equal((await call(dan, 'session-update', { sid: dsid, muted: true })).err, null);
  await http(chatd.url, app, 'POST', '/group/remove', { groupId: 'g2', userIds: ['dan'] });
  r = await http(chatd.url, app, 'POST', '/session/update', { userId: 'dan', sid: dsid, muted: false });
  assert.equal(r.httpStatus, 404, JSON.stringify(r));
  for (const ev of ['session-update', 'session-hide']) {
    const { err } = await call(dan, ev, { sid: dsid, pinned: true });
    assert.match(err.message, /not found/, ev + ' by a removed member');
  }
  dan.close();
  // No token: no socket.
  const s = openSocket(chatd.url, { appId: app.appId, token: '' });
  const e = await new Promise((resolve) => s.once('connect_error', resolve));
  s.close();
  assert.match(String(e.message), /authentication failed/);
});

test('a blocked user\'s private messages are refused and stored nowhere; groups are unaffected', async () => {
  const cid = await connect(chatd.url, { appId: app.appId, token: tokens.cid });
  assert.equal((await call(cid, 'send-private-message', { targetId: 'dan', messageType: 1, content: text('before') })).err, null);
  let r = await http(chatd.url, app, 'POST', '/user/block', { userId: 'dan', blockedUserIds: ['cid'] });
  assert.deepEqual(r.data, { blocked: ['cid'] });
  r = await http(chatd.url, app, 'GET', '/user/blocked', { userId: 'dan' });
  assert.deepEqual(r.data, { blocked: ['cid'] });
  r = await http(chatd.url, other, 'GET', '/user/blocked', { userId: 'dan' });
  assert.deepEqual(r.data, { blocked: [] }, 'another app sees its own users only');
  const danSock = await connect(chatd.url, { appId: app.appId, token: tokens.dan });
  const got = [];
  danSock.on('message', (m) => got.push(m));
  const { err } = await call(cid, 'send-private-message', { targetId: 'dan', messageType: 1, content: text('refused') });
  assert.match(err.message, /^blocked/);
  r = await http(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'cid', targetId: 'dan', messageType: 1, content: JSON.stringify(text('refused too')) });
  assert.equal(r.httpStatus, 403);
  assert.match(r.message, /^blocked/);
  const hist = await http(chatd.url, app, 'GET', '/session/messages', { userId: 'dan', targetId: 'cid', conversationType: 1 });
  assert.deepEqual((hist.data || []).map((m) => m.content.content), ['before'], JSON.stringify(hist));
  // Groups: cid's group messages reach dan.
  await http(chatd.url, app, 'POST', '/group/create', { groupId: 'g3', name: 'G3', userIds: ['cid', 'dan'] });
  assert.equal((await call(cid, 'send-group-message', { targetId: 'g3', messageType: 1, content: text('group') })).err, null);
  await until(() => got.length === 1, 'the group message');
  assert.equal(got[0].data.content.content, 'group');
  // Socket block events, rate-limited per user like every event.
  assert.deepEqual((await call(danSock, 'blocked-list')).data, { blocked: ['cid'] });
  assert.deepEqual((await call(danSock, 'unblock-user', { userIds: ['cid'] })).data, { blocked: [] });
  assert.equal((await call(cid, 'send-private-message', { targetId: 'dan', messageType: 1, content: text('after') })).err, null);
  assert.match((await call(danSock, 'block-user', { userIds: ['dan'] })).err.message, /themselves/);
  let limited = false;
  for (let i = 0; i < 40 && !limited; i++) {
    const { err: e } = await call(danSock, 'block-user', { userIds: ['nobody'] });
    limited = /too many/.test(e?.message || '');
  }
  assert.ok(limited, 'block-user is rate-limited per user');
  cid.close();
  danSock.close();
});

test('group senders are pushed read-receipts; the SDK counts the readers', async () => {
  await http(chatd.url, app, 'POST', '/group/create', { groupId: 'g4', name: 'G4', userIds: ['ann', 'ben', 'cid'] });
  const ann = await dial('ann');
  const m = await ann.send('g4', 1, text('read me'), { group: true });
  const sid = ann.conversations().find((c) => c.targetId === 'g4').sid;
  const pushes = [];
  ann.on('read-receipts', (r) => pushes.push(r));
  for (const u of ['ben', 'cid']) {
    const s = await connect(chatd.url, { appId: app.appId, token: tokens[u] });
    const usid = (await call(s, 'session-list')).data.find((c) => c.targetId === 'g4').sid;
    assert.equal((await call(s, 'set-session-read', usid)).err, null);
    s.close();
  }
  await until(() => ann.readCount(sid, m.seq) === 2, 'both readers known');
  assert.ok(pushes.length <= 2, `${pushes.length} pushes for 2 readers`);
  assert.equal((await ann.messageReaders(sid, m.msgId)).readCount, 2);
});

test('lastSeen survives a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'chatd-seen-'));
  let c = await startChatd({ dataDir: dir, env: { CHATD_PRESENCE_GRACE: '50ms' } });
  try {
    const a = await createApp(c.url, 'seen');
    const tok = await tokenFor(c.url, a, 'eve');
    const s = await connect(c.url, { appId: a.appId, token: tok });
    s.close();
    let seen = 0;
    const deadline = Date.now() + 10000;
    while (!seen) {
      const r = await http(c.url, a, 'GET', '/user/online', { userIds: ['eve'] });
      if (!r.data[0].online) seen = r.data[0].lastSeen;
      if (Date.now() > deadline) throw new Error('eve never went offline');
      await new Promise((res) => setTimeout(res, 20));
    }
    await c.stop();
    c = await startChatd({ dataDir: dir });
    const r = await http(c.url, a, 'GET', '/user/online', { userIds: ['eve'] });
    assert.deepEqual(r.data, [{ userId: 'eve', online: false, lastSeen: seen }]);
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('socket.io 2 clients (node-chat\'s) use the settings events too, and get no new pushes', async () => {
  const fay = await tokenFor(chatd.url, app, 'fay');
  await http(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'ann', targetId: 'fay', messageType: 1, content: JSON.stringify(text('hello fay')) });
  const v2 = await connect(chatd.url, { version: 2, mode: 'polling', appId: app.appId, token: fay });
  const pushed = [];
  v2.on('session-updated', (x) => pushed.push(x));
  const list = (await call(v2, 'session-list')).data;
  const sid = list[0].sid;
  const r = await call(v2, 'session-update', { sid, pinned: true });
  assert.equal(r.err, null, JSON.stringify(r.err));
  assert.equal(r.data.pinned, true);
  assert.equal((await call(v2, 'session-list')).data[0].pinned, true);
  await http(chatd.url, app, 'POST', '/session/update', { userId: 'fay', sid, pinned: false });
  assert.deepEqual((await call(v2, 'blocked-list')).data, { blocked: [] });
  assert.deepEqual(pushed, [], 'no session-updated without the capability');
  v2.close();
});
