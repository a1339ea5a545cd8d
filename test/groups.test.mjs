// Group management and profiles end to end: the signed server API, the
// members' socket events, group events stored as notices and pushed (to a
// node-chat socket.io-client 2 device too, which renders them as text),
// mutes, dismissal, and who may do what.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call as http } from './lib/chatd.mjs';
import { connect, call, collect, until } from './lib/clients.mjs';

let chatd, app, other;
const tokens = {};
const sockets = [];
const people = ['own', 'adm', 'mem', 'mem2', 'out', 'gone'];

async function device(user, opts = {}) {
  const s = await connect(chatd.url, { appId: app.appId, token: tokens[user], ...opts });
  sockets.push(s);
  return s;
}

before(async () => {
  chatd = await startChatd({ env: { CHATD_USER_SEND_RATE: '0', CHATD_GROUP_EVENT_BURST: '1000' } });
  app = await createApp(chatd.url, 'groups');
  other = await createApp(chatd.url, 'another app');
  for (const u of people) {
    const r = await http(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u.toUpperCase(), avatarUri: '' });
    assert.equal(r.status, 1);
    tokens[u] = r.data.token;
  }
  const o = await http(chatd.url, other, 'POST', '/user/getToken', { userId: 'own', name: 'Other', avatarUri: '' });
  tokens.otherApp = o.data.token;
  const g = await http(chatd.url, app, 'POST', '/group/create', { groupId: 'g', name: 'Group', userIds: ['adm', 'mem', 'mem2', 'gone'], ownerId: 'own' });
  assert.equal(g.status, 1, JSON.stringify(g));
});
after(async () => {
  for (const s of sockets) s.close();
  await chatd?.stop();
});

test('owner, admins, info and paged members with roles and join time', async () => {
  const a = await http(chatd.url, app, 'POST', '/group/admins', { groupId: 'g', add: ['adm'] });
  assert.equal(a.status, 1, JSON.stringify(a));
  const info = await http(chatd.url, app, 'GET', '/group/info', { groupId: 'g' });
  assert.equal(info.status, 1);
  assert.equal(info.data.ownerId, 'own');
  assert.equal(info.data.memberCount, 5);
  assert.deepEqual(info.data.extra, {});
  const seen = [];
  let cursor = '';
  for (;;) {
    const p = await http(chatd.url, app, 'GET', '/group/members', { groupId: 'g', limit: 2, cursor });
    assert.equal(p.status, 1, JSON.stringify(p));
    seen.push(...p.data.members);
    if (!p.data.cursor) break;
    cursor = p.data.cursor;
  }
  assert.deepEqual(seen.map((m) => m.userId), ['adm', 'gone', 'mem', 'mem2', 'own']);
  const roles = Object.fromEntries(seen.map((m) => [m.userId, m.role]));
  assert.deepEqual(roles, { adm: 'admin', gone: 'member', mem: 'member', mem2: 'member', own: 'owner' });
  assert.ok(seen.every((m) => m.joinedAt > Date.now() - 60000 && m.name === m.userId.toUpperCase()));
  const ug = await http(chatd.url, app, 'GET', '/user/groups', { userId: 'adm' });
  assert.equal(ug.data.length, 1);
  assert.equal(ug.data[0].groupId, 'g');
  assert.equal(ug.data[0].role, 'admin');
  assert.match(ug.data[0].sid, /^[0-9a-f]{24}$/);
});

test('group events are stored in order, pushed, and node-chat clients see them as text', async () => {
  const v2 = await device('mem', { version: 2 }); // node-chat's SDK: declares nothing
  const pushes = collect(v2, 'message');
  const upd = await http(chatd.url, app, 'POST', '/group/update', { groupId: 'g', name: 'Renamed', notice: 'Be kind', extra: { topic: 'x' } });
  assert.equal(upd.status, 1, JSON.stringify(upd));
  assert.equal(upd.data.name, 'Renamed');
  assert.deepEqual(upd.data.extra, { topic: 'x' });
  assert.equal((await http(chatd.url, app, 'POST', '/group/join', { groupId: 'g', userIds: ['out'] })).status, 1);
  // Idempotent: joining again stores no event.
  assert.equal((await http(chatd.url, app, 'POST', '/group/join', { groupId: 'g', userIds: ['out'] })).status, 1);
  const sent = await http(chatd.url, app, 'POST', '/group/send/message', { senderUserId: 'own', targetId: 'g', messageType: 1, content: { content: 'barrier' } });
  assert.equal(sent.status, 1);
  await until(() => pushes.some((p) => p.data.msgId === sent.data.msgId), 'the barrier message');
  const texts = pushes.map((p) => [p.data.messageType, p.data.content.event, p.data.content.content]);
  assert.deepEqual(texts, [
    [7, 'renamed', 'The group was renamed to \u201cRenamed\u201d'],
    [7, 'notice', 'Group notice: Be kind'],
    [7, 'joined', 'OUT joined the group'],
    [1, undefined, 'barrier'],
  ]);
  for (const p of pushes) assert.equal(p.data.sendSession.title, 'Renamed');
  // History and the session list show them too, in seq order.
  const hist = await http(chatd.url, app, 'GET', '/session/messages', { userId: 'mem', targetId: 'g', conversationType: 2 });
  const seqs = hist.data.map((m) => m.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a));
  assert.ok(hist.data.some((m) => m.messageType === 7 && m.content.event === 'notice'));
  const list = await call(v2, 'session-list');
  assert.equal(list.err, null);
  const s = list.data.find((x) => x.targetId === 'g');
  assert.equal(s.title, 'Renamed');
  assert.equal(s.lastMsg.content, 'barrier');
  // The node-chat device still sends and receives as before.
  const r = await call(v2, 'send-group-message', { targetId: 'g', messageType: 1, content: { content: 'still works' } });
  assert.equal(r.err, null);
  assert.equal(r.data.content.content, 'still works');
});

test('mute and mute-all refuse sends with a clear error', async () => {
  const mem = await device('mem2');
  const adm = await device('adm');
  const until = Date.now() + 3600e3;
  assert.equal((await http(chatd.url, app, 'POST', '/group/mute', { groupId: 'g', userIds: ['mem2'], until })).status, 1);
  let r = await call(mem, 'send-group-message', { targetId: 'g', messageType: 1, content: { content: 'x' } });
  assert.equal(r.err.status, 1000);
  assert.match(r.err.message, /muted in this group until/);
  const page = await http(chatd.url, app, 'GET', '/group/members', { groupId: 'g', limit: 100 });
  assert.equal(page.data.members.find((m) => m.userId === 'mem2').mutedUntil, until);
  const http403 = await http(chatd.url, app, 'POST', '/group/send/message', { senderUserId: 'mem2', targetId: 'g', messageType: 1, content: { content: 'x' } });
  assert.equal(http403.httpStatus, 403);
  assert.equal((await http(chatd.url, app, 'POST', '/group/unmute', { groupId: 'g', userIds: ['mem2'] })).status, 1);
  r = await call(mem, 'send-group-message', { targetId: 'g', messageType: 1, content: { content: 'free' } });
  assert.equal(r.err, null);
  assert.equal((await http(chatd.url, app, 'POST', '/group/mute-all', { groupId: 'g' })).status, 1);
  r = await call(mem, 'send-group-message', { targetId: 'g', messageType: 1, content: { content: 'x' } });
  assert.match(r.err.message, /only its owner and admins may send/);
  r = await call(adm, 'send-group-message', { targetId: 'g', messageType: 1, content: { content: 'admin speaks' } });
  assert.equal(r.err, null);
  assert.equal((await http(chatd.url, app, 'POST', '/group/mute-all', { groupId: 'g', mute: false })).status, 1);
  r = await call(mem, 'send-group-message', { targetId: 'g', messageType: 1, content: { content: 'again' } });
  assert.equal(r.err, null);
  const bad = await http(chatd.url, app, 'POST', '/group/mute', { groupId: 'g', userIds: ['mem2'], until: Date.now() - 1000 });
  assert.equal(bad.status, 1002);
});

test('members read their groups over the socket; others cannot', async () => {
  const mem = await device('mem');
  let r = await call(mem, 'group-info', { groupId: 'g' });
  assert.equal(r.err, null);
  assert.equal(r.data.role, 'member');
  assert.equal(r.data.notice, 'Be kind');
  r = await call(mem, 'group-members', { groupId: 'g', limit: 3 });
  assert.equal(r.data.members.length, 3);
  assert.ok(r.data.cursor);
  r = await call(mem, 'my-groups');
  assert.deepEqual(r.data.map((g) => g.groupId), ['g']);
  r = await call(mem, 'user-info', { userIds: ['own', 'nobody'] });
  assert.deepEqual(r.data.map((p) => p.userId), ['own']);

  const stranger = await device('out', { version: 2 });
  await http(chatd.url, app, 'POST', '/group/remove', { groupId: 'g', userIds: ['out'] });
  const otherApp = await connect(chatd.url, { appId: other.appId, token: tokens.otherApp });
  sockets.push(otherApp);
  for (const [who, s] of [['removed member', stranger], ['other app', otherApp]]) {
    for (const ev of ['group-info', 'group-members']) {
      const x = await call(s, ev, { groupId: 'g' });
      assert.ok(x.err && x.err.status !== 1, `${who} ${ev}: ${JSON.stringify(x)}`);
    }
    const mine = await call(s, 'my-groups');
    assert.deepEqual(mine.data, [], `${who} my-groups`);
    const ui = await call(s, 'user-info', { userIds: ['mem'] });
    assert.deepEqual(ui.data, [], `${who} user-info`);
  }
  // A member may not manage (and management is off by default for everyone).
  for (const [s, ev, arg] of [[mem, 'group-add', { groupId: 'g', userIds: ['out'] }], [mem, 'group-update', { groupId: 'g', name: 'x' }]]) {
    const x = await call(s, ev, arg);
    assert.equal(x.err.status, 1000, `${ev}: ${JSON.stringify(x)}`);
  }
  const admin = await device('adm');
  const x = await call(admin, 'group-remove', { groupId: 'g', userIds: ['mem'] });
  assert.match(x.err.message, /CHATD_GROUP_SOCKET_MANAGE/);
  // Without a token there is no socket at all.
  await assert.rejects(connect(chatd.url, { appId: app.appId, token: 'nope' }));
  // Unsigned server calls are refused.
  const res = await fetch(chatd.url + '/group/info?groupId=g&app_id=' + app.appId);
  assert.notEqual((await res.json()).status, 1);
  // Another app's backend does not see the group.
  const foreign = await http(chatd.url, other, 'GET', '/group/info', { groupId: 'g' });
  assert.equal(foreign.httpStatus, 404);
});

test('leave, transfer and dismiss; former members get group-event', async () => {
  const gone = await device('gone', { capabilities: ['group-events'] });
  const goneEvents = collect(gone, 'group-event');
  let r = await call(gone, 'group-leave', { groupId: 'g' });
  assert.equal(r.err, null);
  await until(() => goneEvents.length === 1, 'the left event');
  assert.equal(goneEvents[0].event, 'left');
  assert.equal(goneEvents[0].message.content.content, 'GONE left the group');
  r = await call(gone, 'group-leave', { groupId: 'g' });
  assert.ok(r.err, 'leaving twice');

  const own = await device('own');
  r = await call(own, 'group-leave', { groupId: 'g' });
  assert.match(r.err.message, /transfer/);
  assert.equal((await http(chatd.url, app, 'POST', '/group/transfer', { groupId: 'g', userId: 'adm' })).status, 1);
  const info = await http(chatd.url, app, 'GET', '/group/info', { groupId: 'g' });
  assert.equal(info.data.ownerId, 'adm');
  const t = await http(chatd.url, app, 'POST', '/group/transfer', { groupId: 'g', userId: 'nobody' });
  assert.equal(t.httpStatus, 403);

  const mem = await device('mem', { capabilities: ['group-events'] });
  const memEvents = collect(mem, 'group-event');
  const memMsgs = collect(mem, 'message');
  assert.equal((await http(chatd.url, app, 'POST', '/group/dismiss', { groupId: 'g' })).status, 1);
  await until(() => memEvents.length === 1, 'the dismissed event');
  assert.equal(memEvents[0].event, 'dismissed');
  // The notice and the group-event are separate pushes: either may come first.
  await until(() => memMsgs.some((m) => m.data.content.event === 'dismissed'), 'the dismissed notice');
  r = await call(mem, 'send-group-message', { targetId: 'g', messageType: 1, content: { content: 'x' } });
  assert.match(r.err.message, /dismissed/);
  assert.equal((await http(chatd.url, app, 'POST', '/group/join', { groupId: 'g', userIds: ['mem'] })).httpStatus, 403);
  const list = await call(mem, 'session-list');
  assert.ok(!list.data.some((s) => s.targetId === 'g'));
});

test('user profiles: update, info and delete', async () => {
  const up = await http(chatd.url, app, 'POST', '/user/update', { userId: 'mem2', name: 'Mem Two', extra: { level: 3 } });
  assert.equal(up.status, 1, JSON.stringify(up));
  const info = await http(chatd.url, app, 'GET', '/user/info', { userIds: ['mem2', 'nobody'] });
  assert.deepEqual(info.data, [{ userId: 'mem2', name: 'Mem Two', avatarUri: '', extra: { level: 3 } }]);
  const p = await http(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'mem2', targetId: 'out', messageType: 1, content: { content: 'hi' } });
  assert.equal(p.data.sendUser.name, 'Mem Two');
  const s = await device('mem2');
  const closed = new Promise((r) => s.once('disconnect', r));
  const del = await http(chatd.url, app, 'POST', '/user/delete', { userId: 'mem2' });
  assert.equal(del.status, 1);
  await closed;
  await assert.rejects(connect(chatd.url, { appId: app.appId, token: tokens.mem2 }));
  const sessions = await http(chatd.url, app, 'GET', '/user/sessions', { userId: 'mem2' });
  assert.deepEqual(sessions.data, []);
  assert.equal((await http(chatd.url, app, 'POST', '/user/update', { userId: 'nobody', name: 'x' })).httpStatus, 404);
});

test('socket management when the app allows it, and the per-user event limit', async () => {
  const c2 = await startChatd({ env: { CHATD_GROUP_SOCKET_MANAGE: '*', CHATD_GROUP_EVENT_RATE: '0.001', CHATD_GROUP_EVENT_BURST: '4' } });
  try {
    const a2 = await createApp(c2.url, 'managed');
    const tk = {};
    for (const u of ['o', 'a', 'm', 'n']) tk[u] = (await http(c2.url, a2, 'POST', '/user/getToken', { userId: u, name: u, avatarUri: '' })).data.token;
    await http(c2.url, a2, 'POST', '/group/create', { groupId: 'g', name: 'G', userIds: ['o', 'a', 'm'] });
    await http(c2.url, a2, 'POST', '/group/admins', { groupId: 'g', add: ['a'] });
    const a = await connect(c2.url, { appId: a2.appId, token: tk.a });
    const m = await connect(c2.url, { appId: a2.appId, token: tk.m });
    sockets.push(a, m);
    let r = await call(a, 'group-add', { groupId: 'g', userIds: ['n'] });
    assert.equal(r.err, null, JSON.stringify(r));
    r = await call(a, 'group-update', { groupId: 'g', notice: 'from the admin' });
    assert.equal(r.data.notice, 'from the admin');
    r = await call(m, 'group-remove', { groupId: 'g', userIds: ['n'] });
    assert.match(r.err.message, /owner and admins/);
    r = await call(a, 'group-remove', { groupId: 'g', userIds: ['o'] });
    assert.equal(r.err.status, 1000);
    r = await call(a, 'group-remove', { groupId: 'g', userIds: ['n'] });
    assert.equal(r.err, null);
    r = await call(a, 'my-groups'); // the admin's 5th group event
    assert.match(r.err.message, /too many/);
    r = await call(m, 'my-groups'); // the limit is per user
    assert.equal(r.err, null);
  } finally {
    await c2.stop();
  }
});
