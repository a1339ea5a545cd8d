// node-chat's SDK flows against chatd, driven the way node-chat's JS SDK
// (ehs-chat-client) drives node-chat: socket.io-client 2 with token and appId
// in the handshake query and default transports, error-first acks, the
// `message` push, and axios for uploads (multipart up_file, onUploadProgress)
// from a page on another origin. The app backend uses the signed HTTP API.
// Every reply is checked against node-chat's shapes, and a user's own
// messages are never pushed to any of their node-chat devices.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import axios from 'axios';
import io from 'socket.io-client-v2';
import { startChatd, createApp, call as backend, signedParams } from './lib/chatd.mjs';
import { until } from './lib/clients.mjs';

const APP_ORIGIN = 'https://app.example';
const HEX24 = /^[0-9a-f]{24}$/;
const DATE = /^(\d\d:\d\d|\d\d\/\d\d\/\d\d)$/;
// A 1×1 PNG, padded so that an upload reports progress more than once.
const png = Buffer.alloc(256 << 10);
Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64').copy(png);

let chatd, app;
const users = { alice: 'Alice', bob: 'Bob', carol: 'Carol' };
const tokens = {};
const devices = [];

before(async () => {
  chatd = await startChatd({ env: { CHATD_USER_SEND_RATE: '0' } });
  app = await createApp(chatd.url, 'node-chat app');
  for (const [id, name] of Object.entries(users)) {
    const r = await backend(chatd.url, app, 'POST', '/user/getToken', { userId: id, name, avatarUri: `https://a.example/${id}.png` });
    assert.equal(r.status, 1);
    tokens[id] = r.data.token;
  }
  const g = await backend(chatd.url, app, 'POST', '/group/create', { groupId: 'team', name: 'Team', avatarUri: 'https://a.example/team.png', userIds: Object.keys(users) });
  assert.equal(g.status, 1);
});
after(async () => {
  for (const d of devices) d.socket.close();
  await chatd?.stop();
});

// device is one node-chat SDK instance: socket.io-client 2 as the SDK opens
// it, its pushes recorded, and its requests made with error-first acks.
async function device(user, transports) {
  const opts = { query: { token: tokens[user], appId: app.appId }, forceNew: true, reconnection: false };
  if (transports) opts.transports = transports;
  const socket = io(chatd.url, opts);
  const d = { user, socket, pushes: [] };
  socket.on('message', (p) => d.pushes.push(p));
  d.request = (event, ...args) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), 10000);
    socket.emit(event, ...args, (err, data) => {
      clearTimeout(timer);
      if (err) reject(Object.assign(new Error(err.message), { status: err.status }));
      else resolve(data);
    });
  });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (e) => reject(new Error(String(e))));
    socket.once('connect_error', reject);
  });
  devices.push(d);
  return d;
}

// texts lists a device's pushes by content, up to and including the first
// push of barrier: pushes reach a device in the order of the sends, so what
// it got before a later message addressed to it is all it ever gets of them.
function upTo(d, barrier) {
  const t = d.pushes.map((p) => p.data.content.content);
  const i = t.indexOf(barrier);
  return i < 0 ? null : t.slice(0, i + 1);
}

function assertMessage(m, { sender, target, type = 1, text, conversationType }) {
  assert.match(m.msgId, HEX24);
  assert.equal(m.senderUserId, sender);
  assert.equal(m.targetId, target);
  assert.equal(m.conversationType, conversationType);
  assert.equal(m.messageType, type);
  if (text !== undefined) assert.equal(m.content.content, text);
  assert.match(m.date, DATE);
  assert.deepEqual(m.sendUser, { name: users[sender], avatarUri: `https://a.example/${sender}.png` });
}

function assertSession(s, { targetId, conversationType, title, unread, last }) {
  assert.match(s.sid, HEX24);
  assert.equal(s.targetId, targetId);
  assert.equal(s.conversationType, conversationType);
  assert.equal(s.title, title);
  assert.equal(s.unread, unread);
  assert.equal(typeof s.lastMsg.content, 'string', 'lastMsg.content is the text apps render');
  assert.equal(s.lastMsg.content, last);
  assert.match(s.lastMsg.date, DATE);
}

test("node-chat's SDK flows: sessions, history, sends, read, upload, pushes", async () => {
  // alice has two node-chat devices, bob two, carol one, on the transports
  // the SDK may end up on.
  const alice1 = await device('alice');
  const alice2 = await device('alice', ['websocket']);
  const bob1 = await device('bob');
  const bob2 = await device('bob', ['polling']);
  const carol = await device('carol', ['polling']);

  // Private send from a socket: the ack is node-chat's SendResult; whatever
  // senderUserId says, the sender is the token's user.
  const sent = await alice1.request('send-private-message', { senderUserId: 'carol', targetId: 'bob', messageType: 1, content: { content: 'hello bob' } });
  assertMessage(sent, { sender: 'alice', target: 'bob', conversationType: 1, text: 'hello bob' });
  assert.equal(sent.sendSession.title, 'Bob');
  assert.equal(sent.sendSession.avatar, 'https://a.example/bob.png');
  assert.match(sent.sendSession.sid, HEX24);

  // bob's devices get node-chat's push, with bob's own session.
  await until(() => bob1.pushes.length === 1 && bob2.pushes.length === 1, 'push to bob');
  for (const d of [bob1, bob2]) {
    const p = d.pushes[0];
    assert.deepEqual([p.message, p.status, p.type], ['', 1, 'user']);
    assert.equal(p.data.msgId, sent.msgId);
    assertMessage(p.data, { sender: 'alice', target: 'bob', conversationType: 1, text: 'hello bob' });
    assert.equal(p.data.sendSession.title, 'Alice');
    assert.notEqual(p.data.sendSession.sid, sent.sendSession.sid);
    assert.equal(p.data.own, undefined);
  }

  // Session list over the socket: node-chat's shape, lastMsg.content a string.
  let list = await bob1.request('session-list');
  const bobWithAlice = list.find((s) => s.conversationType === 1 && s.targetId === 'alice');
  assertSession(bobWithAlice, { targetId: 'alice', conversationType: 1, title: 'Alice', unread: 1, last: 'hello bob' });
  assert.equal(bobWithAlice.sid, bob1.pushes[0].data.sendSession.sid);
  assert.equal(bobWithAlice.avatar, 'https://a.example/alice.png');
  assert.ok(list.some((s) => s.targetId === 'team' && s.conversationType === 2 && s.title === 'Team' && !s.lastMsg), 'the group, with no message yet');

  // History, newest first.
  const bobReply = await bob2.request('send-private-message', { targetId: 'alice', messageType: 1, content: { content: 'hi alice' } });
  const history = await bob1.request('session-message-list', { sid: bobWithAlice.sid, limit: 20, lastmsgId: '' });
  assert.deepEqual(history.map((m) => m.content.content), ['hi alice', 'hello bob']);
  assertMessage(history[0], { sender: 'bob', target: 'alice', conversationType: 1, text: 'hi alice' });
  assertMessage(history[1], { sender: 'alice', target: 'bob', conversationType: 1, text: 'hello bob' });
  const older = await bob1.request('session-message-list', { sid: bobWithAlice.sid, limit: 20, lastmsgId: bobReply.msgId });
  assert.deepEqual(older.map((m) => m.msgId), [sent.msgId]);

  // Read: the ack is [], the unread count drops to 0.
  assert.deepEqual(await bob1.request('set-session-read', bobWithAlice.sid), []);
  list = await bob2.request('session-list');
  assert.equal(list.find((s) => s.sid === bobWithAlice.sid).unread, 0);

  // Group send from a socket: every other member's devices get it with their
  // own session of the group.
  const g = await carol.request('send-group-message', { targetId: 'team', messageType: 1, content: { content: 'hello team' } });
  assertMessage(g, { sender: 'carol', target: 'team', conversationType: 2, text: 'hello team' });
  assert.deepEqual([g.sendSession.title, g.sendSession.avatar], ['Team', 'https://a.example/team.png']);

  // Sends by the app backend over HTTP, as node-chat's server API.
  const viaHTTP = await backend(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'alice', targetId: 'carol', messageType: 1, content: { content: 'from the backend' } });
  assert.equal(viaHTTP.status, 1);
  assertMessage(viaHTTP.data, { sender: 'alice', target: 'carol', conversationType: 1, text: 'from the backend' });
  const groupHTTP = await backend(chatd.url, app, 'POST', '/group/send/message', { senderUserId: 'bob', targetId: 'team', messageType: 1, content: { content: 'bob to the team' } });
  assert.equal(groupHTTP.status, 1);

  // Upload as the SDK does: axios, multipart up_file, token and appId in the
  // query, progress reported; from a page on another origin.
  const progress = [];
  const form = new FormData();
  form.append('up_file', new Blob([png], { type: 'image/png' }), 'dot.png');
  const up = await axios.post(`${chatd.url}/file/upload`, form, {
    params: { token: tokens.carol, appId: app.appId },
    headers: { 'Content-Type': 'multipart/form-data', Origin: APP_ORIGIN },
    onUploadProgress: (e) => progress.push(e.loaded),
  });
  assert.equal(up.status, 200);
  assert.equal(up.headers['access-control-allow-origin'], APP_ORIGIN);
  assert.equal(up.data.status, 1);
  assert.match(up.data.data.fid, /\S/);
  assert.ok(up.data.data.fullUrl.startsWith(chatd.url + '/files/'));
  assert.ok(progress.length >= 1 && progress.at(-1) >= png.length, `progress ${progress}`);
  const dl = await axios.get(up.data.data.fullUrl, { responseType: 'arraybuffer' });
  assert.equal(dl.headers['content-type'], 'image/png');
  assert.deepEqual(Buffer.from(dl.data), png);
  // ...and sends it as an image message, whose preview is its inner content.
  const img = await carol.request('send-private-message', { targetId: 'alice', messageType: 3, content: { content: up.data.data.fullUrl, name: 'dot.png' } });
  assert.equal(img.messageType, 3);

  // Barriers: a last message to each user, after which each device's pushes
  // are complete. alice's and bob's node-chat devices never got their own
  // messages, whether sent from the other device, this device or over HTTP.
  await backend(chatd.url, app, 'POST', '/group/send/message', { senderUserId: 'carol', targetId: 'team', messageType: 1, content: { content: 'last' } });
  await backend(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'alice', targetId: 'carol', messageType: 1, content: { content: 'last for carol' } });
  await until(() => [alice1, alice2, bob1, bob2].every((d) => upTo(d, 'last')) && upTo(carol, 'last for carol'), 'barriers');
  const aliceGot = ['hi alice', 'hello team', 'bob to the team', up.data.data.fullUrl, 'last'];
  assert.deepEqual(upTo(alice1, 'last'), aliceGot, "the sending device gets no push of its own message");
  assert.deepEqual(upTo(alice2, 'last'), aliceGot, "alice's other node-chat device gets none of her messages");
  const bobGot = ['hello bob', 'hello team', 'last'];
  assert.deepEqual(upTo(bob1, 'last'), bobGot, "bob's node-chat devices get none of bob's own");
  assert.deepEqual(upTo(bob2, 'last'), bobGot);
  assert.deepEqual(upTo(carol, 'last for carol'), ['from the backend', 'bob to the team', 'last for carol']);
  for (const d of [alice1, alice2]) {
    const p = d.pushes.find((x) => x.data.content.content === 'hello team');
    assert.equal(p.data.sendSession.title, 'Team');
    assert.equal(p.data.conversationType, 2);
    assertMessage(p.data, { sender: 'carol', target: 'team', conversationType: 2, text: 'hello team' });
  }
  assert.ok(devices.every((d) => d.pushes.every((p) => p.data.own === undefined)), 'nothing marked own');

  // The backend's session list (GET /user/sessions): node-chat's shape; a
  // non-text message previews as its inner content.
  const sessions = await backend(chatd.url, app, 'GET', '/user/sessions', { userId: 'alice' });
  assert.equal(sessions.status, 1);
  const withCarol = sessions.data.find((s) => s.conversationType === 1 && s.targetId === 'carol');
  assertSession(withCarol, { targetId: 'carol', conversationType: 1, title: 'Carol', unread: 0, last: 'last for carol' });
  const team = sessions.data.find((s) => s.targetId === 'team');
  assertSession(team, { targetId: 'team', conversationType: 2, title: 'Team', unread: 3, last: 'last' });
  assert.equal(sessions.data[0].targetId, 'carol', 'most recent first');
  const carolList = await carol.request('session-list');
  const carolWithAlice = carolList.find((s) => s.targetId === 'alice');
  assert.equal(carolWithAlice.lastMsg.content, 'last for carol');
  const aliceSocketList = await alice2.request('session-list');
  assert.deepEqual(aliceSocketList.map((s) => [s.sid, s.lastMsg?.content]), sessions.data.map((s) => [s.sid, s.lastMsg?.content]), 'socket and HTTP lists agree');

  // The backend's history (GET /session/messages), newest first.
  const h = await backend(chatd.url, app, 'GET', '/session/messages', { userId: 'alice', targetId: 'carol', conversationType: 1, limit: 2 });
  assert.equal(h.status, 1);
  assert.deepEqual(h.data.map((m) => m.content.content), ['last for carol', up.data.data.fullUrl]);
  assertMessage(h.data[1], { sender: 'carol', target: 'alice', conversationType: 1, type: 3 });
});

test('bad parameters answer HTTP 422 with status 1002, as node-chat', async () => {
  const p = signedParams(app, { senderUserId: 'alice', targetId: 'bob', messageType: 9, content: { content: 'x' } });
  const err = await axios.post(`${chatd.url}/private/send/message`, p).catch((e) => e);
  assert.equal(err.response?.status, 422);
  assert.equal(err.response.data.status, 1002);
  assert.match(err.response.data.message, /messageType/);
  // Socket acks carry the same code.
  const d = await device('alice', ['websocket']);
  await assert.rejects(d.request('send-private-message', { targetId: 'bob', messageType: 9, content: { content: 'x' } }), (e) => e.status === 1002);
});

test('an upload with progress from another origin is preflighted', async () => {
  const pre = await axios.options(`${chatd.url}/file/upload`, {
    headers: { Origin: APP_ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], APP_ORIGIN);
  assert.equal(pre.headers['access-control-allow-credentials'], 'true');
  assert.match(pre.headers['access-control-allow-methods'], /POST/);
  assert.equal(pre.headers['access-control-allow-headers'], 'content-type');
});
