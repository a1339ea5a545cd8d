// Recall, edit, delete-for-me, replies, mentions and reactions over the
// signed HTTP API and Socket.IO (v4 and v2), against a real chatd: every
// device that asked for message-updated converges, node-chat clients see
// nothing they did not ask for, and every route and event refuses other
// users, other apps, removed members and missing credentials.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call } from './lib/chatd.mjs';
import { connect, call as emit, collect, until } from './lib/clients.mjs';

let chatd, app, other;
const tokens = {};
before(async () => {
  chatd = await startChatd();
  app = await createApp(chatd.url, 'lifecycle');
  other = await createApp(chatd.url, 'another app');
  for (const u of ['alice', 'bob', 'carol', 'dave']) {
    const r = await call(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u.toUpperCase(), avatarUri: '' });
    assert.equal(r.status, 1, JSON.stringify(r));
    tokens[u] = r.data.token;
  }
  await call(chatd.url, other, 'POST', '/user/getToken', { userId: 'alice', name: 'Other Alice', avatarUri: '' });
  const g = await call(chatd.url, app, 'POST', '/group/create', { groupId: 'g', name: 'G', userIds: ['alice', 'bob', 'carol'] });
  assert.equal(g.status, 1, JSON.stringify(g));
});
after(async () => { await chatd?.stop(); });

const groupSend = (sender, text, extra = {}) => call(chatd.url, app, 'POST', '/group/send/message',
  { senderUserId: sender, targetId: 'g', messageType: 1, content: { content: text }, ...extra });
const history = async (userId) => {
  const r = await call(chatd.url, app, 'GET', '/session/messages', { userId, targetId: 'g', conversationType: 2, limit: 50 });
  assert.equal(r.status, 1, JSON.stringify(r));
  return r.data;
};

test('HTTP sends carry replyTo and mentions; the reply quotes the original', async () => {
  const q = await groupSend('alice', 'question?');
  const form = await call(chatd.url, app, 'POST', '/group/send/message',
    { senderUserId: 'bob', targetId: 'g', messageType: 1, content: { content: 'answer' }, replyTo: q.data.msgId, mentions: ['alice'] }, { form: true });
  assert.equal(form.status, 1, JSON.stringify(form));
  assert.equal(form.data.replyTo, q.data.msgId);
  assert.deepEqual(form.data.quote.excerpt, 'question?');
  assert.deepEqual(form.data.mentions, ['alice']);
  const stranger = await groupSend('bob', 'hey', { mentions: ['dave'] });
  assert.equal(stranger.httpStatus, 422);
  assert.match(stranger.message, /not a member/);
  const sessions = await call(chatd.url, app, 'GET', '/user/sessions', { userId: 'alice' });
  assert.equal(sessions.data.find((s) => s.targetId === 'g').mentionedUnread, 1);
});

test('HTTP edit, recall and delete with the authorization matrix', async () => {
  const m = await groupSend('alice', 'teh typo');
  const id = m.data.msgId;
  const edit = (who, a = app, extra = {}) => call(chatd.url, a, 'POST', '/message/edit',
    { userId: who, msgId: id, conversationType: 2, targetId: 'g', content: { content: 'the typo' }, ...extra });
  // another user, another app, a non-member, no signature
  assert.equal((await edit('bob')).httpStatus, 403);
  assert.equal((await edit('alice', other)).httpStatus, 404);
  assert.equal((await edit('dave')).httpStatus, 403);
  const unsigned = await fetch(chatd.url + '/message/recall', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app_id: app.appId, time_stamp: String(Date.now()), nonce_str: 'n' + Math.random(), sign: '0'.repeat(32), msgId: id, conversationType: 2, targetId: 'g' }) });
  assert.equal(unsigned.status, 400);
  assert.equal((await unsigned.json()).status, 1004);
  const ok = await edit('alice');
  assert.equal(ok.status, 1, JSON.stringify(ok));
  assert.equal(ok.data.editCount, 1);
  assert.equal((await history('bob')).find((x) => x.msgId === id).content.content, 'the typo');

  // bob may not recall alice's message; the app may.
  const byBob = await call(chatd.url, app, 'POST', '/message/recall', { userId: 'bob', msgId: id, conversationType: 2, targetId: 'g' });
  assert.equal(byBob.httpStatus, 403);
  assert.match(byBob.message, /not your message/);
  const byApp = await call(chatd.url, app, 'POST', '/message/recall', { msgId: id, conversationType: 2, targetId: 'g' });
  assert.equal(byApp.status, 1, JSON.stringify(byApp));
  assert.equal(byApp.data.recalled, true);
  const seen = (await history('carol')).find((x) => x.msgId === id);
  assert.equal(seen.recalled, true);
  assert.deepEqual(seen.content, { content: '' }, 'a node-chat renderer finds an empty text');

  // delete for bob only; a removed member can no longer act.
  const del = await call(chatd.url, app, 'POST', '/message/delete', { userId: 'bob', msgId: id, conversationType: 2, targetId: 'g' });
  assert.equal(del.status, 1, JSON.stringify(del));
  assert.ok(!(await history('bob')).some((x) => x.msgId === id));
  assert.ok((await history('alice')).some((x) => x.msgId === id));
  await call(chatd.url, app, 'POST', '/group/join', { groupId: 'g', userIds: ['dave'] });
  await call(chatd.url, app, 'POST', '/group/remove', { groupId: 'g', userIds: ['dave'] });
  const removed = await call(chatd.url, app, 'POST', '/message/delete', { userId: 'dave', msgId: id, conversationType: 2, targetId: 'g' });
  assert.equal(removed.httpStatus, 403);
  const clear = await call(chatd.url, app, 'POST', '/session/clear', { userId: 'carol', conversationType: 2, targetId: 'g' });
  assert.equal(clear.status, 1, JSON.stringify(clear));
  assert.deepEqual(await history('carol'), []);
});

test('socket.io 4 and 2 devices with message-updated converge; node-chat clients see nothing new', async (t) => {
  const v4 = await connect(chatd.url, { version: 4, appId: app.appId, token: tokens.bob, auth: 'auth', capabilities: ['message-updated'] });
  const v2cap = await connect(chatd.url, { version: 2, appId: app.appId, token: tokens.bob, capabilities: ['message-updated'] });
  const v2plain = await connect(chatd.url, { version: 2, appId: app.appId, token: tokens.bob });
  const v4plain = await connect(chatd.url, { version: 4, appId: app.appId, token: tokens.bob });
  const sender = await connect(chatd.url, { version: 4, appId: app.appId, token: tokens.alice });
  t.after(() => { for (const s of [v4, v2cap, v2plain, v4plain, sender]) s.close(); });
  const ups = [v4, v2cap, v2plain, v4plain].map((s) => collect(s, 'message-updated'));
  const msgs = [v4, v2cap, v2plain, v4plain].map((s) => collect(s, 'message'));

  const sent = await emit(sender, 'send-group-message', { targetId: 'g', messageType: 1, content: { content: 'v1' } });
  assert.equal(sent.err, null);
  const sid = sent.data.sendSession.sid;
  const msgId = sent.data.msgId;
  const ed = await emit(sender, 'edit-message', { sid, msgId, content: { content: 'v2' } });
  assert.equal(ed.err, null, JSON.stringify(ed.err));
  const bobSid = (await emit(v4plain, 'session-list')).data.find((s) => s.targetId === 'g').sid;
  const re = await emit(v2plain, 'react', { sid: bobSid, msgId, emoji: '🎉' });
  assert.equal(re.err, null, JSON.stringify(re.err));
  const rc = await emit(sender, 'recall-message', { sid, msgId });
  assert.equal(rc.err, null);
  // Barrier: a message every device gets after the changes.
  await groupSend('carol', 'barrier');
  await until(() => msgs.every((m) => m.some((x) => x.data.content.content === 'barrier')), 'the barrier');
  for (const got of [ups[0], ups[1]]) {
    assert.deepEqual(got.map((u) => u.version), [1, 2, 3].map((v) => v + got[0].version - 1));
    assert.equal(got.at(-1).recalled, true);
    assert.equal(got.at(-1).sid, bobSid);
    assert.equal(got[1].reaction.emoji, '🎉');
  }
  assert.equal(ups[2].length, 0, 'a socket.io 2 client that declared nothing gets no message-updated');
  assert.equal(ups[3].length, 0, 'a socket.io 4 client that declared nothing gets no message-updated');
  // sync-changes from version 0 holds the final state.
  const sc = await emit(v2plain, 'sync-changes', { sid: bobSid, afterVersion: 0 });
  assert.equal(sc.err, null);
  const final = sc.data.messages.find((m) => m.msgId === msgId);
  assert.equal(final.recalled, true);
  assert.equal(final.version, ups[0].at(-1).version);
});

test('events refuse other users, other apps and missing tokens', async (t) => {
  const bob = await connect(chatd.url, { version: 4, appId: app.appId, token: tokens.bob });
  const dave = await connect(chatd.url, { version: 4, appId: app.appId, token: tokens.dave });
  t.after(() => { bob.close(); dave.close(); });
  const m = await groupSend('alice', 'mine');
  const bobSid = (await emit(bob, 'session-list')).data.find((s) => s.targetId === 'g').sid;
  for (const [ev, arg] of [['recall-message', { sid: bobSid, msgId: m.data.msgId }], ['edit-message', { sid: bobSid, msgId: m.data.msgId, content: { content: 'x' } }]]) {
    const r = await emit(bob, ev, arg);
    assert.match(r.err?.message ?? '', /not your message/, ev);
  }
  for (const ev of ['recall-message', 'delete-message', 'react', 'unreact', 'sync-changes', 'clear-session']) {
    const r = await emit(dave, ev, { sid: bobSid, msgId: m.data.msgId, emoji: '👍' });
    assert.match(r.err?.message ?? '', /not found/, ev + ' with another user\'s sid');
  }
  await assert.rejects(connect(chatd.url, { version: 4, appId: app.appId, token: '' }), /authentication failed/);
  await assert.rejects(connect(chatd.url, { version: 4, appId: other.appId, token: tokens.bob }), /authentication failed/);
});

test('changes share the per-user send rate limit', async (t) => {
  const limited = await startChatd({ env: { CHATD_USER_SEND_RATE: '1', CHATD_USER_SEND_BURST: '3' } });
  t.after(() => limited.stop());
  const a = await createApp(limited.url, 'limited');
  const tok = await call(limited.url, a, 'POST', '/user/getToken', { userId: 'u', name: 'U', avatarUri: '' });
  await call(limited.url, a, 'POST', '/user/getToken', { userId: 'v', name: 'V', avatarUri: '' });
  const s = await connect(limited.url, { version: 4, appId: a.appId, token: tok.data.token });
  t.after(() => s.close());
  const sent = await emit(s, 'send-private-message', { targetId: 'v', messageType: 1, content: { content: 'x' } });
  let err;
  for (const e of ['1', '2', '3', '4']) {
    const r = await emit(s, 'react', { sid: sent.data.sendSession.sid, msgId: sent.data.msgId, emoji: e });
    err = err || r.err;
  }
  assert.match(err?.message ?? '', /too fast/);
});
