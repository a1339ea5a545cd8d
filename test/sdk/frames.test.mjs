// The SDK's Engine.IO/Socket.IO frame handling without a server: a scripted
// WebSocket feeds it well-formed and malformed frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatdClient, ChatdError } from '../../sdk/js/chatd.js';

// scripted returns a WebSocket class whose instances the test drives.
function scripted() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) { this.url = url; this.sent = []; sockets.push(this); }
    send(s) { this.sent.push(s); }
    close() { this.closed = true; setTimeout(() => this.onclose?.({}), 0); }
    feed(s) { this.onmessage?.({ data: s }); }
  }
  return { FakeWebSocket, sockets };
}

function newClient(WebSocket) {
  return new ChatdClient({ url: 'http://chat.test', appId: 'a1', token: 't1', WebSocket, reconnect: false, requestTimeout: 0 });
}

test('handshake, ping, event acks and pushes', async () => {
  const { FakeWebSocket, sockets } = scripted();
  const c = newClient(FakeWebSocket);
  const connected = c.connect();
  const ws = sockets[0];
  assert.equal(ws.url, 'ws://chat.test/socket.io/?EIO=4&transport=websocket');
  ws.feed('0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}');
  assert.deepEqual(JSON.parse(ws.sent[0].slice(2)), { token: 't1', appId: 'a1', capabilities: ['own-messages', 'message-updated', 'group-events', 'typing', 'receipts', 'presence', 'session-settings'] });
  assert.ok(ws.sent[0].startsWith('40{'));
  ws.feed('2');
  assert.equal(ws.sent.at(-1), '3');
  ws.feed('40{"sid":"s1"}');
  await new Promise((r) => setImmediate(r));
  const list = ws.sent.at(-1);
  assert.match(list, /^42(\d+)\["session-list"\]$/);
  const id = list.match(/^42(\d+)/)[1];
  ws.feed(`43${id}[null,[{"sid":"s9","conversationType":1,"targetId":"bob","unread":0,"title":"Bob","avatar":"","lastSeq":4,"readSeq":4}]]`);
  await connected;
  assert.equal(c.state, 'connected');
  assert.equal(c.conversations()[0].sid, 's9');

  const got = [];
  c.on('message', (m) => got.push(m));
  const push = (seq) => ws.feed(`42["message",{"message":"","status":1,"type":"user","data":{"msgId":"m${seq}","seq":${seq},"senderUserId":"bob","targetId":"me","conversationType":1,"messageType":1,"content":{"content":"n${seq}"},"sendSession":{"sid":"s9","title":"Bob","avatar":""}}}]`);
  push(5);
  push(5);
  push(4);
  assert.deepEqual(got.map((m) => m.msgId), ['m5']);
  assert.equal(c.conversation('s9').unread, 1);

  // An error ack rejects with chatd's status.
  const p = c.request('sync', { sid: 'nope', afterSeq: 0 });
  const rid = ws.sent.at(-1).match(/^42(\d+)/)[1];
  ws.feed(`43${rid}[{"status":1002,"message":"not found"}]`);
  await assert.rejects(p, (e) => e instanceof ChatdError && e.status === 1002 && e.message === 'not found');
  c.close();
});

test('malformed frames are ignored', async () => {
  const { FakeWebSocket, sockets } = scripted();
  const c = newClient(FakeWebSocket);
  const errors = [];
  c.on('error', (e) => errors.push(e));
  const connected = c.connect();
  const ws = sockets[0];
  ws.feed('0{"sid":"x","pingInterval":25000,"pingTimeout":20000}');
  ws.feed('40{"sid":"s1"}');
  await new Promise((r) => setImmediate(r));
  const id = ws.sent.at(-1).match(/^42(\d+)/)[1];
  ws.feed(`43${id}[null,[]]`);
  await connected;
  // (Not 41 or 44: DISCONNECT and CONNECT_ERROR rightly end the connection.)
  const junk = ['', '4', '42', '42[', '42{}', '42[1,2]', '42["message"]', '42["message",null]', '42["message",{"data":{}}]',
    '43', '43abc', '4399[null]', '45-["x"]', '46', '4/other,2["message",{}]', '9zzz', '0not json', '6', '\u0000',
    '42["session-read"]', '42["session-read",{"sid":"unknown"}]', '42["whatever",1,2,3]', '3probe'];
  let seed = 1;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed; };
  for (let i = 0; i < 500; i++) {
    let s = '';
    const n = rnd() % 24;
    for (let j = 0; j < n; j++) s += '0123456789[]{}",:/-4253 abcnul'[rnd() % 31];
    if (s[0] !== '1' && s[0] !== '4') junk.push('4' + s);
    junk.push('42' + s, '43' + s);
  }
  for (const f of junk) ws.feed(f);
  assert.equal(c.state, 'connected');
  assert.deepEqual(errors, []);
  c.close();
  assert.equal(c.state, 'closed');
});

// --- exactly once: the convergence rule against scripted frames ---

const settle = () => new Promise((r) => setImmediate(r));

// waitFor polls for what timers bring about (reconnects, timeouts).
async function waitFor(cond, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// Wire is one scripted connection: it answers the client's requests and
// pushes messages.
class Wire {
  constructor(ws) { this.ws = ws; this.answered = new Set(); }
  // requests lists the client's unanswered requests of event: [{id, arg}].
  requests(event) {
    const out = [];
    for (const s of this.ws.sent) {
      const m = s.match(/^42(\d+)(\[.*)$/s);
      if (!m || this.answered.has(m[1])) continue;
      const [name, arg] = JSON.parse(m[2]);
      if (name === event) out.push({ id: m[1], arg });
    }
    return out;
  }
  // answer acks the one unanswered request of event with data.
  answer(event, data, which = () => true) {
    const rs = this.requests(event).filter((r) => which(r.arg));
    assert.equal(rs.length, 1, `one ${event} request waiting, not ${rs.length}`);
    this.answered.add(rs[0].id);
    this.ws.feed(`43${rs[0].id}${JSON.stringify([null, data])}`);
    return rs[0].arg;
  }
  push(data) { this.ws.feed('42' + JSON.stringify(['message', { message: '', status: 1, data, type: 'user' }])); }
  // handshake opens the Engine.IO session and accepts the CONNECT.
  async handshake() {
    this.ws.feed('0{"sid":"x","pingInterval":25000,"pingTimeout":20000}');
    this.ws.feed('40{"sid":"s1"}');
    await settle();
  }
}

// msg is message seq of conversation sid as the client sees it.
function msg(seq, { sid = 's9', from = 'bob', to = 'me', own } = {}) {
  const m = {
    msgId: `${sid}-m${seq}`, seq, senderUserId: from, targetId: to, conversationType: 1, messageType: 1,
    content: { content: `n${seq}` }, date: '10:00', sendUser: { name: from, avatarUri: '' }, timestamp: 1000 + seq,
    sendSession: { sid, title: 'Bob', avatar: '' },
  };
  if (own !== undefined) m.own = own;
  return m;
}

// open connects a scripted client; list answers its first session-list
// unless it is undefined (then the test answers it).
async function open(list, opts = {}) {
  const { FakeWebSocket, sockets } = scripted();
  const c = new ChatdClient({ url: 'http://chat.test', appId: 'a1', token: 't1', WebSocket: FakeWebSocket, reconnect: false, requestTimeout: 0, ...opts });
  const got = [];
  c.on('message', (m) => got.push(m));
  const errors = [];
  c.on('error', (e) => errors.push(e));
  const connected = c.connect();
  const wire = new Wire(sockets[0]);
  await wire.handshake();
  if (list !== undefined) {
    wire.answer('session-list', list);
    await connected;
  }
  return { c, wire, got, errors, connected, sockets };
}

const ids = (got) => got.map((m) => m.msgId);
const session = (sid, lastSeq) => ({ sid, conversationType: 1, targetId: 'bob', unread: 0, title: 'Bob', avatar: '', lastSeq, readSeq: 0 });

test('a new conversation first seen through the push of seq 2, before the ack of seq 1, is emitted from seq 1', async () => {
  const { c, wire, got } = await open([], { userId: 'me' });
  const sent = c.sendText('bob', 'n1');
  await settle();
  const [send] = wire.requests('send-private-message');
  assert.ok(send, 'send transmitted');
  // bob answered at once; his push overtakes the ack of the send.
  wire.push(msg(2, { sid: 'sN' }));
  wire.answered.add(send.id);
  wire.ws.feed(`43${send.id}${JSON.stringify([null, msg(1, { sid: 'sN', from: 'me', to: 'bob' })])}`);
  await sent;
  assert.deepEqual(ids(got), ['sN-m1', 'sN-m2']);
  // The gap that seq 2 opened is fetched from the start; its answer repeats nothing.
  assert.equal(wire.answer('sync', [msg(1, { sid: 'sN', from: 'me', to: 'bob' }), msg(2, { sid: 'sN' })]).afterSeq, 0);
  await settle();
  assert.deepEqual(ids(got), ['sN-m1', 'sN-m2']);
  assert.deepEqual(wire.requests('sync'), [], 'no further sync');
  c.close();
});

test('a new conversation first seen through the ack of seq 2 is synced from 0 (the reconnect of issue 19)', async () => {
  // The reconnect of issue 19 at the frame level: a queued send is acked
  // before the session list answers, and the list shows nothing newer.
  const { c, wire, got } = await open([], { userId: 'me' });
  const sent = c.sendText('bob', 'reply');
  await settle();
  const [send] = wire.requests('send-private-message');
  wire.answered.add(send.id);
  wire.ws.feed(`43${send.id}${JSON.stringify([null, msg(2, { sid: 'sN', from: 'me', to: 'bob' })])}`);
  await sent;
  assert.deepEqual(ids(got), [], 'seq 2 waits for seq 1');
  const refreshed = c.refreshConversations();
  await settle();
  wire.answer('session-list', [session('sN', 2)]);
  await refreshed;
  assert.equal(wire.answer('sync', [msg(1, { sid: 'sN' }), msg(2, { sid: 'sN', from: 'me', to: 'bob' })]).afterSeq, 0);
  await settle();
  assert.deepEqual(ids(got), ['sN-m1', 'sN-m2']);
  c.close();
});

test('messages received before the first list are live; the list does not swallow what follows them', async () => {
  const { c, wire, got, connected } = await open(undefined);
  wire.push(msg(5));
  await settle();
  assert.deepEqual(ids(got), [], 'held until the baseline');
  wire.answer('session-list', [session('s9', 6)]);
  await connected;
  assert.deepEqual(ids(got), ['s9-m5']);
  assert.equal(wire.answer('sync', [msg(6)]).afterSeq, 5);
  await settle();
  assert.deepEqual(ids(got), ['s9-m5', 's9-m6']);
  // Older messages are history: seq 4 is not emitted.
  wire.push(msg(4));
  assert.deepEqual(ids(got), ['s9-m5', 's9-m6']);
  c.close();
});

test('a history page never counts as emitted: newer messages in it are synced and emitted once', async () => {
  const { c, wire, got } = await open([session('s9', 4)]);
  const page = c.history('s9', { limit: 3 });
  await settle();
  wire.answer('session-message-list', [msg(6), msg(5), msg(4)]);
  assert.deepEqual((await page).map((m) => m.seq), [4, 5, 6]);
  wire.push(msg(7));
  assert.equal(wire.answer('sync', [msg(5), msg(6), msg(7)]).afterSeq, 4);
  await settle();
  assert.deepEqual(ids(got), ['s9-m5', 's9-m6', 's9-m7']);
  c.close();
});

test('a conversation that leaves the list and comes back continues where it was; one first listed later starts at 0', async () => {
  const { c, wire, got } = await open([session('s9', 2)]);
  wire.push(msg(3));
  assert.deepEqual(ids(got), ['s9-m3']);
  let r = c.refreshConversations();
  await settle();
  wire.answer('session-list', []); // hidden, or left
  await r;
  r = c.refreshConversations();
  await settle();
  wire.answer('session-list', [session('s9', 5), { ...session('g1', 2), conversationType: 2, targetId: 'crew' }]);
  await r;
  assert.equal(wire.answer('sync', [msg(4), msg(5)], (a) => a.sid === 's9').afterSeq, 3);
  assert.equal(wire.answer('sync', [msg(1, { sid: 'g1' }), msg(2, { sid: 'g1' })], (a) => a.sid === 'g1').afterSeq, 0);
  await settle();
  assert.deepEqual(ids(got), ['s9-m3', 's9-m4', 's9-m5', 'g1-m1', 'g1-m2']);
  c.close();
});

test('a sync answer that skips seqs moves past them: the store has nothing there', async () => {
  const { c, wire, got } = await open([]);
  wire.push(msg(9, { sid: 'g1' })); // say, a group joined at seq 8
  assert.equal(wire.answer('sync', [msg(9, { sid: 'g1' })]).afterSeq, 0);
  await settle();
  wire.push(msg(10, { sid: 'g1' }));
  assert.deepEqual(ids(got), ['g1-m9', 'g1-m10']);
  assert.deepEqual(wire.requests('sync'), []);
  c.close();
});

test('an own message pushed from another device (data.own) is a message like any other, never unread', async () => {
  const { c, wire, got } = await open([session('s9', 0)]);
  assert.equal(c.userId, null);
  wire.push(msg(1, { from: 'me', to: 'bob', own: true }));
  wire.push(msg(2));
  assert.deepEqual(ids(got), ['s9-m1', 's9-m2']);
  assert.equal(got[0].own, undefined, 'shaped like any message');
  assert.equal(c.userId, 'me', 'learned from the own push');
  assert.equal(c.conversation('s9').unread, 1, 'only bob\'s message is unread');
  c.close();
});

test('a first session list that fails is not the baseline: the client connects again', async () => {
  const { c, wire: first, got, errors, connected, sockets } = await open(undefined, { reconnect: true, minReconnectDelay: 1, maxReconnectDelay: 2 });
  first.push(msg(3));
  const [list] = first.requests('session-list');
  first.ws.feed(`43${list.id}[{"status":1000,"message":"try again"}]`);
  await settle();
  assert.equal(errors[0]?.message, 'try again');
  assert.ok(first.ws.closed, 'reconnects');
  await waitFor(() => sockets.length === 2, 'a second connection');
  const second = new Wire(sockets[1]);
  await second.handshake();
  second.answer('session-list', [session('s9', 3)]);
  await connected;
  assert.deepEqual(ids(got), ['s9-m3'], 'the message held before the failed list is emitted');
  c.close();
});

test('a sync that times out is tried again', async () => {
  const { c, wire, got, errors } = await open([session('s9', 1)], { requestTimeout: 50 });
  wire.push(msg(3));
  const [first] = wire.requests('sync');
  assert.equal(first.arg.afterSeq, 1);
  await waitFor(() => errors.length, 'the sync to time out');
  assert.match(errors[0].message, /no answer/);
  wire.answered.add(first.id); // too late: its answer would be ignored
  await waitFor(() => wire.requests('sync').length, 'the sync to be tried again');
  wire.answer('sync', [msg(2), msg(3)]);
  await settle();
  assert.deepEqual(ids(got), ['s9-m2', 's9-m3']);
  c.close();
});

test('a connection that drops before its list answers reports nothing; the next one connects once', async () => {
  const { c, wire: first, connected, sockets } = await open(undefined, { reconnect: true, minReconnectDelay: 1, maxReconnectDelay: 2 });
  const connects = [];
  c.on('connect', (info) => connects.push(info));
  first.ws.close();
  await waitFor(() => sockets.length === 2, 'a second connection');
  const second = new Wire(sockets[1]);
  await second.handshake();
  // The first connection's list request went out again, beside the new one's.
  const lists = second.requests('session-list');
  assert.equal(lists.length, 2);
  for (const { id } of lists) second.ws.feed(`43${id}[null,[]]`);
  await connected;
  await settle();
  assert.deepEqual(connects, [{ reconnect: false }]);
  assert.equal(c.state, 'connected');
  c.close();
});

// shown keeps what an app would show of each message: its 'message' event,
// replaced by each 'message-updated' state (sdk/js/README.md).
function shown(c) {
  const byId = new Map();
  c.on('message', (m) => byId.set(m.msgId, m));
  c.on('message-updated', (u) => { if (!u.deleted && byId.has(u.msgId)) byId.set(u.msgId, u); });
  return byId;
}
const updated = (wire, u) => wire.ws.feed('42' + JSON.stringify(['message-updated', u]));
const mine = (m) => (m.reactions || []).filter((r) => r.me).map((r) => r.emoji);

test('an edit pushed by someone else keeps this user\'s reactions as theirs: a push\'s "me" is the editor\'s', async () => {
  const { c, wire } = await open([{ ...session('s9', 1), changeVersion: 0 }], { userId: 'me' });
  const view = shown(c);
  wire.push(msg(2));
  const m2 = { ...msg(2) };
  delete m2.sendSession;
  const reacted = c.react('s9', m2.msgId, '👍');
  await settle();
  wire.answer('react', { ...m2, version: 1, reactions: [{ emoji: '👍', count: 1, userIds: ['me'], me: true }] });
  await reacted;
  assert.deepEqual(mine(view.get(m2.msgId)), ['👍']);
  // bob edits his message: the push's reactions say "me" for bob.
  updated(wire, { sid: 's9', ...m2, content: { content: 'n2 edited' }, editedAt: 2000, editCount: 1, version: 2,
    reactions: [{ emoji: '👍', count: 1, userIds: ['me'], me: false }] });
  assert.equal(view.get(m2.msgId).content.content, 'n2 edited');
  assert.deepEqual(mine(view.get(m2.msgId)), ['👍'], 'still my reaction');
  // bob reacts too: still only 👍 is mine.
  updated(wire, { sid: 's9', ...m2, content: { content: 'n2 edited' }, editedAt: 2000, editCount: 1, version: 3,
    reactions: [{ emoji: '👍', count: 1, userIds: ['me'], me: false }, { emoji: '🎉', count: 1, userIds: ['bob'], me: true }],
    reaction: { userId: 'bob', emoji: '🎉', added: true } });
  assert.deepEqual(mine(view.get(m2.msgId)), ['👍']);
  c.close();
});

test('a change that arrives while its message waits behind a gap is in the message when it is emitted', async () => {
  const { c, wire, got } = await open([{ ...session('s9', 1), changeVersion: 0 }], { userId: 'me' });
  const view = shown(c);
  wire.push(msg(3)); // seq 2 is missing: seq 3 waits while sync fetches the gap
  await settle();
  const m3 = { ...msg(3) };
  delete m3.sendSession;
  // bob edits seq 3 before the sync answers; the answer was read before the edit.
  updated(wire, { sid: 's9', ...m3, content: { content: 'n3 edited' }, editedAt: 2000, editCount: 1, version: 1 });
  assert.equal(wire.answer('sync', [msg(2), msg(3)]).afterSeq, 1);
  await settle();
  assert.deepEqual(ids(got), ['s9-m2', 's9-m3']);
  assert.equal(view.get(m3.msgId).content.content, 'n3 edited');
  assert.equal(view.get(m3.msgId).editCount, 1);
  // The state it was emitted with is known: the same change again is not re-emitted.
  const again = [];
  c.on('message-updated', (u) => again.push(u));
  updated(wire, { sid: 's9', ...m3, content: { content: 'n3 edited' }, editedAt: 2000, editCount: 1, version: 1 });
  assert.deepEqual(again, []);
  c.close();
});

test('a message synced with its reactions knows which are this user\'s when someone else reacts', async () => {
  const { c, wire } = await open([{ ...session('s9', 1), changeVersion: 0 }], { userId: 'me' });
  const view = shown(c);
  wire.push(msg(3));
  await settle();
  const m3 = { ...msg(3) };
  delete m3.sendSession;
  // Another device of mine reacted to seq 3 meanwhile; sync shows it, "me" exact.
  wire.answer('sync', [msg(2), { ...msg(3), version: 1, reactions: [{ emoji: '👍', count: 1, userIds: ['me'], me: true }] }]);
  await settle();
  assert.deepEqual(mine(view.get(m3.msgId)), ['👍']);
  updated(wire, { sid: 's9', ...m3, version: 2, reactions: [{ emoji: '👍', count: 2, userIds: ['me', 'bob'], me: true }],
    reaction: { userId: 'bob', emoji: '👍', added: true } });
  assert.deepEqual(view.get(m3.msgId).reactions.map((r) => [r.emoji, r.count, r.me]), [['👍', 2, true]]);
  c.close();
});
