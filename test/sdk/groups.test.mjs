// The SDK's group and profile calls against a real chatd: info, paged
// members, my groups, user info, management where the app allows it, notices
// as messages of type NOTICE, and groupEvent when the user leaves a group.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call as http } from '../lib/chatd.mjs';
import { ChatdError, MessageType } from '../../sdk/js/chatd.js';
import { tokenFor, client, record, until } from './helpers.mjs';

let chatd, app;
const tokens = {};
const open = [];

before(async () => {
  chatd = await startChatd({ env: { CHATD_GROUP_SOCKET_MANAGE: '*' } });
  app = await createApp(chatd.url, 'sdk groups');
  for (const u of ['ann', 'ben', 'cat', 'dan']) tokens[u] = await tokenFor(chatd.url, app, u);
  assert.equal((await http(chatd.url, app, 'POST', '/group/create', { groupId: 'crew', name: 'Crew', userIds: ['ann', 'ben', 'cat'] })).status, 1);
});
after(async () => {
  for (const c of open) c.close();
  await chatd?.stop();
});

async function connected(user) {
  const c = client(chatd.url, app.appId, tokens[user]);
  open.push(c);
  await c.connect();
  return c;
}

test('members read the group, owners manage it, everyone sees the events', async () => {
  assert.equal(MessageType.NOTICE, 7);
  const ann = await connected('ann');
  const ben = await connected('ben');
  const benMsgs = record(ben);
  const info = await ben.groupInfo('crew');
  assert.equal(info.ownerId, 'ann');
  assert.equal(info.role, 'member');
  const page = await ben.groupMembers('crew', { limit: 2 });
  assert.deepEqual(page.members.map((m) => [m.userId, m.role]), [['ann', 'owner'], ['ben', 'member']]);
  const rest = await ben.groupMembers('crew', { cursor: page.cursor });
  assert.deepEqual(rest.members.map((m) => m.userId), ['cat']);
  assert.deepEqual((await ben.myGroups()).map((g) => g.groupId), ['crew']);
  assert.deepEqual((await ben.userInfo(['ann', 'dan'])).map((p) => p.userId), ['ann']);

  await assert.rejects(ben.updateGroup('crew', { name: 'Mine' }), (e) => e instanceof ChatdError && e.status === 1000);
  const g = await ann.updateGroup('crew', { notice: 'Welcome', extra: { color: 'blue' } });
  assert.equal(g.notice, 'Welcome');
  assert.deepEqual(g.extra, { color: 'blue' });
  await ann.addGroupMembers('crew', ['dan']);
  await until(() => benMsgs.filter((m) => m.messageType === MessageType.NOTICE).length === 2, 'two notices');
  const notices = benMsgs.filter((m) => m.messageType === MessageType.NOTICE).map((m) => [m.content.event, m.content.content, m.senderUserId]);
  assert.deepEqual(notices, [['notice', 'Group notice: Welcome', 'ann'], ['joined', 'DAN joined the group', 'ann']]);
});

test('a removed member gets groupEvent and loses the conversation', async () => {
  const ann = await connected('ann');
  const cat = await connected('cat');
  assert.ok(cat.conversations().some((s) => s.targetId === 'crew'));
  const events = [];
  cat.on('groupEvent', (e) => events.push(e));
  await ann.removeGroupMembers('crew', ['cat']);
  await until(() => events.length === 1, 'the removal');
  assert.equal(events[0].event, 'removed');
  assert.deepEqual(events[0].userIds, ['cat']);
  assert.equal(events[0].message.content.content, 'CAT was removed from the group');
  await until(() => !cat.conversations().some((s) => s.targetId === 'crew'), 'the conversation to go');
  await assert.rejects(cat.groupInfo('crew'), ChatdError);

  const dan = await connected('dan');
  const danEvents = [];
  dan.on('groupEvent', (e) => danEvents.push(e));
  await dan.leaveGroup('crew');
  await until(() => danEvents.length === 1, 'the left event');
  assert.equal(danEvents[0].event, 'left');
});
