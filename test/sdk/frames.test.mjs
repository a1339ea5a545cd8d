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
  assert.deepEqual(JSON.parse(ws.sent[0].slice(2)), { token: 't1', appId: 'a1', capabilities: ['own-messages'] });
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
