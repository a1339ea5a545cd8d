// Walks node-chat's whole HTTP API against a running chatd, signing every
// request the way node-chat backends do (npm qs + crypto MD5).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call } from './lib/chatd.mjs';

let chatd, app;
before(async () => {
  chatd = await startChatd();
  app = await createApp(chatd.url, 'api walk');
});
after(async () => { await chatd?.stop(); });

const users = [
  { userId: 'alice', name: 'Alice', avatarUri: 'https://example.com/a.png' },
  { userId: 'bob', name: 'Bob 鲍勃', avatarUri: 'https://example.com/b.png' },
  { userId: 'carol', name: 'Carol', avatarUri: '' },
];

test('app create returns 24-hex ids and a secret', () => {
  assert.match(app.appId, /^[0-9a-f]{24}$/);
  assert.ok(app.appSecret.length >= 32);
  assert.equal(app.appName, 'api walk');
});

test('app create needs the admin key', async () => {
  const res = await fetch(chatd.url + '/app/create', {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' },
    body: JSON.stringify({ appName: 'x' }),
  });
  assert.equal(res.status, 403);
  const body = await res.json();
  assert.notEqual(body.status, 1);
});

const tokens = {};
test('getToken creates users and is stable', async () => {
  for (const u of users) {
    const r = await call(chatd.url, app, 'POST', '/user/getToken', u);
    assert.equal(r.status, 1, JSON.stringify(r));
    assert.ok(r.data.token.length > 20);
    tokens[u.userId] = r.data.token;
  }
  const again = await call(chatd.url, app, 'POST', '/user/getToken', users[0]);
  assert.equal(again.data.token, tokens.alice);
});

test('form-encoded bodies are signed and accepted too', async () => {
  const r = await call(chatd.url, app, 'POST', '/user/getToken', { userId: 'dave', name: 'Dave ~ & = +', avatarUri: '' }, { form: true });
  assert.equal(r.status, 1, JSON.stringify(r));
});

test('a bad signature is refused with 1004', async () => {
  const p = { userId: 'alice', app_id: app.appId, time_stamp: String(Date.now()), nonce_str: 'n' + Math.random(), sign: '0'.repeat(32) };
  const res = await fetch(chatd.url + '/user/getToken', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(p) });
  const body = await res.json();
  assert.equal(body.status, 1004);
});

let firstPrivate;
test('private and group sends, sessions with unread, history pages', async () => {
  // alice → bob, 25 messages.
  for (let i = 1; i <= 25; i++) {
    const r = await call(chatd.url, app, 'POST', '/private/send/message', {
      senderUserId: 'alice', targetId: 'bob', messageType: 1, content: { content: `hello ${i} 你好` },
    });
    assert.equal(r.status, 1, JSON.stringify(r));
    assert.equal(r.data.seq, i);
    assert.equal(r.data.conversationType, 1);
    assert.equal(r.data.senderUserId, 'alice');
    assert.equal(r.data.targetId, 'bob');
    assert.match(r.data.msgId, /^[0-9a-f]{24}$/);
    assert.match(r.data.date, /^\d\d:\d\d$/);
    assert.deepEqual(r.data.sendUser, { name: 'Alice', avatarUri: 'https://example.com/a.png' });
    assert.equal(r.data.sendSession.title, 'Bob 鲍勃');
    if (i === 1) firstPrivate = r.data;
  }

  const g = await call(chatd.url, app, 'POST', '/group/create', {
    groupId: 'g1', name: 'Team', avatarUri: 'https://example.com/g.png', userIds: ['alice', 'bob', 'carol'],
  });
  assert.equal(g.status, 1, JSON.stringify(g));
  const gs = await call(chatd.url, app, 'POST', '/group/send/message', {
    senderUserId: 'carol', targetId: 'g1', messageType: 1, content: { content: 'hi team' },
  });
  assert.equal(gs.status, 1, JSON.stringify(gs));
  assert.equal(gs.data.conversationType, 2);
  assert.equal(gs.data.targetId, 'g1');
  assert.equal(gs.data.sendSession.title, 'Team');

  const bob = await call(chatd.url, app, 'GET', '/user/sessions', { userId: 'bob' });
  assert.equal(bob.status, 1);
  assert.equal(bob.data.length, 2);
  const [first, second] = bob.data;
  assert.equal(first.conversationType, 2, 'the group is most recent');
  assert.equal(first.title, 'Team');
  assert.equal(first.unread, 1);
  assert.equal(first.lastMsg.content, 'hi team', "node-chat's lastMsg.content is the inner text");
  assert.deepEqual(first.lastMsg.body, { content: 'hi team' });
  assert.equal(second.conversationType, 1);
  assert.equal(second.targetId, 'alice');
  assert.equal(second.title, 'Alice');
  assert.equal(second.unread, 25);
  assert.equal(second.lastMsg.messageType, 1);
  assert.match(second.sid, /^[0-9a-f]{24}$/);

  const alice = await call(chatd.url, app, 'GET', '/user/sessions', { userId: 'alice' });
  const withBob = alice.data.find((s) => s.conversationType === 1);
  assert.equal(withBob.unread, 0, 'own messages are never unread');
  assert.equal(withBob.title, 'Bob 鲍勃');

  // History: newest first, pages of 10 via lastmsgId, no overlap or gap.
  const seen = [];
  let lastmsgId;
  for (;;) {
    const params = { userId: 'bob', targetId: 'alice', conversationType: 1, limit: 10 };
    if (lastmsgId) params.lastmsgId = lastmsgId;
    const page = await call(chatd.url, app, 'GET', '/session/messages', params);
    assert.equal(page.status, 1, JSON.stringify(page));
    if (page.data.length === 0) break;
    assert.ok(page.data.length <= 10);
    for (const m of page.data) seen.push(m.seq);
    lastmsgId = page.data.at(-1).msgId;
  }
  assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => 25 - i));

  const def = await call(chatd.url, app, 'GET', '/session/messages', { userId: 'alice', targetId: 'bob', conversationType: 1 });
  assert.equal(def.data.length, 20, 'limit defaults to 20');
  assert.equal(def.data[0].content.content, 'hello 25 你好');
  assert.equal(def.data[0].sendUser.name, 'Alice');
});

test('clientMsgId makes a retry return the original', async () => {
  const p = { senderUserId: 'bob', targetId: 'alice', messageType: 1, content: { content: 'once' }, clientMsgId: 'c-1' };
  const a = await call(chatd.url, app, 'POST', '/private/send/message', p);
  const b = await call(chatd.url, app, 'POST', '/private/send/message', p);
  assert.equal(a.status, 1);
  assert.equal(b.data.msgId, a.data.msgId);
  assert.equal(b.data.seq, a.data.seq);
});

test('removed members lose the session and cannot send', async () => {
  const r = await call(chatd.url, app, 'POST', '/group/remove', { groupId: 'g1', userIds: ['carol'] });
  assert.equal(r.status, 1, JSON.stringify(r));
  const s = await call(chatd.url, app, 'GET', '/user/sessions', { userId: 'carol' });
  assert.equal(s.data.filter((x) => x.conversationType === 2).length, 0);
  const send = await call(chatd.url, app, 'POST', '/group/send/message', {
    senderUserId: 'carol', targetId: 'g1', messageType: 1, content: { content: 'still here?' },
  });
  assert.notEqual(send.status, 1);
  assert.match(send.message, /not a member/);
  const join = await call(chatd.url, app, 'POST', '/group/join', { groupId: 'g1', userIds: ['carol'] });
  assert.equal(join.status, 1);
});

// A 1×1 PNG.
const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

test('upload an image and download it', async () => {
  const form = new FormData();
  form.append('up_file', new Blob([png], { type: 'image/png' }), 'dot.png');
  const res = await fetch(`${chatd.url}/file/upload?appId=${app.appId}&token=${encodeURIComponent(tokens.alice)}`, { method: 'POST', body: form });
  const body = await res.json();
  assert.equal(body.status, 1, JSON.stringify(body));
  assert.ok(body.data.fid);
  assert.ok(body.data.fullUrl.startsWith(chatd.url + '/files/'));
  const dl = await fetch(body.data.fullUrl);
  assert.equal(dl.status, 200);
  assert.equal(dl.headers.get('content-type'), 'image/png');
  assert.equal(dl.headers.get('x-content-type-options'), 'nosniff');
  assert.deepEqual(Buffer.from(await dl.arrayBuffer()), png);
});

test('uploads of a disallowed type or with a bad token are refused', async () => {
  const form = new FormData();
  form.append('up_file', new Blob(['<html><script>alert(1)</script></html>'], { type: 'image/png' }), 'x.png');
  const res = await fetch(`${chatd.url}/file/upload?appId=${app.appId}&token=${encodeURIComponent(tokens.alice)}`, { method: 'POST', body: form });
  const body = await res.json();
  assert.notEqual(body.status, 1);
  assert.match(body.message, /not allowed/);

  const form2 = new FormData();
  form2.append('up_file', new Blob([png]), 'dot.png');
  const res2 = await fetch(`${chatd.url}/file/upload?appId=${app.appId}&token=nope`, { method: 'POST', body: form2 });
  assert.equal(res2.status, 401);
});
