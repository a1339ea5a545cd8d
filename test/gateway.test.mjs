// The realtime gateway driven by the real npm socket.io-client 2 and 4, over
// websocket, polling, and polling with upgrade.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call as http } from './lib/chatd.mjs';
import { connect, open, call, collect, until } from './lib/clients.mjs';

let chatd, app;
const tokens = {};
before(async () => {
  chatd = await startChatd();
  app = await createApp(chatd.url, 'gateway');
  for (const u of ['ann', 'ben', 'cat', 'dan']) {
    const r = await http(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u.toUpperCase(), avatarUri: `https://a/${u}` });
    tokens[u] = r.data.token;
  }
  const g = await http(chatd.url, app, 'POST', '/group/create', { groupId: 'room', name: 'Room', avatarUri: 'https://a/room', userIds: ['ann', 'ben', 'cat'] });
  assert.equal(g.status, 1);
});
after(async () => { await chatd?.stop(); });

const dial = (user, opts = {}) => connect(chatd.url, { appId: app.appId, token: tokens[user], ...opts });

for (const version of [2, 4]) {
  describe(`socket.io-client ${version}`, () => {
    for (const mode of ['websocket', 'polling', 'upgrade']) {
      test(`connects over ${mode} and lists sessions`, async () => {
        const s = await dial('ann', { version, mode });
        try {
          const { err, data } = await call(s, 'session-list');
          assert.equal(err, null);
          assert.ok(Array.isArray(data));
          assert.ok(data.some((x) => x.targetId === 'room' && x.title === 'Room'));
          if (mode === 'upgrade') await until(() => s.io.engine.transport.name === 'websocket', 'upgrade');
          const sent = await call(s, 'send-private-message', { targetId: 'dan', messageType: 1, content: { content: `via ${mode}` } });
          assert.equal(sent.err, null, JSON.stringify(sent.err));
          assert.equal(sent.data.content.content, `via ${mode}`);
        } finally { s.close(); }
      });
    }

    test('a bad token is refused with a message', async () => {
      await assert.rejects(dial('ann', { version, token: 'forged.token' }), /authentication failed/);
    });

    if (version === 4) {
      test('CONNECT auth payload authenticates too', async () => {
        const s = await dial('ann', { version, auth: 'auth' });
        const { err } = await call(s, 'session-list');
        assert.equal(err, null);
        s.close();
      });
    }

    test('an event emitted in the same tick as connect is answered', async () => {
      const s = open(chatd.url, { version, mode: 'websocket', appId: app.appId, token: tokens.ben });
      try {
        const reply = await call(s, 'session-list');
        assert.equal(reply.err, null);
        assert.ok(Array.isArray(reply.data));
      } finally { s.close(); }
    });

    test('each event acks success and errors, error first', async () => {
      const s = await dial('cat', { version });
      try {
        const list = await call(s, 'session-list');
        const room = list.data.find((x) => x.targetId === 'room');
        assert.ok(room);

        const g = await call(s, 'send-group-message', { targetId: 'room', messageType: 1, content: { content: 'hello room' }, senderUserId: 'ann' });
        assert.equal(g.err, null);
        assert.equal(g.data.senderUserId, 'cat', 'the sender is the token user, whatever senderUserId says');
        assert.equal(g.data.sendSession.sid, room.sid);

        const hist = await call(s, 'session-message-list', { sid: room.sid, limit: 5 });
        assert.equal(hist.err, null);
        assert.equal(hist.data[0].msgId, g.data.msgId);

        const read = await call(s, 'set-session-read', room.sid);
        assert.equal(read.err, null);
        assert.deepEqual(read.data, []);

        const errors = [
          await call(s, 'session-message-list', { sid: 'ffffffffffffffffffffffff' }),
          await call(s, 'session-message-list', { sid: 'not-a-sid' }),
          await call(s, 'send-private-message', { targetId: 'nobody', messageType: 1, content: { content: 'x' } }),
          await call(s, 'send-private-message', { targetId: 'ann', messageType: 42, content: { content: 'x' } }),
          await call(s, 'send-group-message', { targetId: 'nogroup', messageType: 1, content: { content: 'x' } }),
          await call(s, 'set-session-read', 'ffffffffffffffffffffffff'),
          await call(s, 'sync', { sid: room.sid, afterSeq: -1 }),
        ];
        for (const e of errors) {
          assert.ok(e.err, 'an error ack');
          assert.equal(typeof e.err.status, 'number');
          assert.ok(e.err.message.length > 0);
          assert.equal(e.data, undefined);
        }
      } finally { s.close(); }
    });

    test("a user cannot read someone else's session", async () => {
      const ann = await dial('ann', { version });
      const dan = await dial('dan', { version });
      try {
        const annRoom = (await call(ann, 'session-list')).data.find((x) => x.targetId === 'room');
        const r = await call(dan, 'session-message-list', { sid: annRoom.sid });
        assert.ok(r.err);
        assert.match(r.err.message, /not found/);
        const m = await call(dan, 'set-session-read', annRoom.sid);
        assert.ok(m.err);
      } finally { ann.close(); dan.close(); }
    });
  });
}

test('pushes reach every device of every recipient with their own session; own messages only where declared', async () => {
  // 3 users × 2 devices: node-chat's kind (socket.io-client 2, declares
  // nothing) and a chatd-aware one (socket.io-client 4, declares own-messages).
  const devices = {};
  for (const u of ['ann', 'ben', 'cat']) {
    devices[u] = [
      await dial(u, { version: 2, mode: 'websocket' }),
      await dial(u, { version: 4, mode: 'upgrade', auth: 'auth', capabilities: ['own-messages'] }),
    ];
  }
  const pushes = {};
  for (const u in devices) pushes[u] = devices[u].map((d) => collect(d, 'message'));
  try {
    const sessions = {};
    for (const u in devices) sessions[u] = (await call(devices[u][0], 'session-list')).data;

    // Private: ann (device 0) → ben.
    const sent = await call(devices.ann[0], 'send-private-message', { targetId: 'ben', messageType: 1, content: { content: 'psst' } });
    assert.equal(sent.err, null);
    await until(() => pushes.ben[0].length === 1 && pushes.ben[1].length === 1 && pushes.ann[1].length === 1, 'private pushes');
    for (const p of [...pushes.ben, pushes.ann[1]].map((x) => x[0])) {
      assert.equal(p.status, 1);
      assert.equal(p.type, 'user');
      assert.equal(p.message, '');
      assert.equal(p.data.msgId, sent.data.msgId);
      assert.equal(p.data.seq, sent.data.seq);
    }
    const benPush = pushes.ben[0][0].data;
    assert.equal(benPush.sendSession.title, 'ANN', "ben's session is titled with ann");
    assert.notEqual(benPush.sendSession.sid, sent.data.sendSession.sid);
    assert.equal(benPush.own, undefined, "another user's message is not marked own");
    const annOther = pushes.ann[1][0].data;
    assert.equal(annOther.own, true, "ann's declaring device gets her message marked own");
    assert.equal(annOther.sendSession.sid, sent.data.sendSession.sid, "ann's other device sees ann's own session");
    assert.equal(annOther.sendSession.title, 'BEN');

    // Group: cat (device 1) → room.
    const g = await call(devices.cat[1], 'send-group-message', { targetId: 'room', messageType: 1, content: { content: 'all' } });
    assert.equal(g.err, null);
    // Barriers: pushes reach a device in the order of the sends, so what a
    // device got before a later message addressed to it is all it will get.
    // ben's group message over HTTP is the barrier of ann's and cat's devices
    // (and of ben's declaring one); ann's private one, of ben's other device.
    for (const [from, to, text, path] of [['ben', 'room', 'last', '/group/send/message'], ['ann', 'ben', 'after', '/private/send/message']]) {
      const r = await http(chatd.url, app, 'POST', path, { senderUserId: from, targetId: to, messageType: 1, content: { content: text } });
      assert.equal(r.status, 1);
    }
    const texts = (list) => list.map((p) => p.data.content.content + (p.data.own ? ' (own)' : ''));
    const upTo = (list, barrier) => {
      const t = texts(list);
      return t.slice(0, t.findIndex((x) => x.startsWith(barrier)) + 1);
    };
    const barrierOf = (d) => (d === devices.ben[0] ? 'after' : 'last');
    await until(() => Object.keys(devices).every((u) => devices[u].every((d, i) => upTo(pushes[u][i], barrierOf(d)).length > 0)), 'barriers');
    assert.deepEqual(upTo(pushes.ann[0], 'last'), ['all', 'last'], 'the sending node-chat device never gets its own message');
    assert.deepEqual(upTo(pushes.ann[1], 'last'), ['psst (own)', 'all', 'last']);
    assert.deepEqual(upTo(pushes.ben[0], 'after'), ['psst', 'all', 'after'], "ben's node-chat device gets none of ben's own");
    assert.deepEqual(upTo(pushes.ben[1], 'last'), ['psst', 'all', 'last (own)'], 'an HTTP send reaches the declaring device, marked own');
    assert.deepEqual(upTo(pushes.cat[0], 'last'), ['last'], "cat's node-chat device gets none of cat's own");
    assert.deepEqual(upTo(pushes.cat[1], 'last'), ['last'], 'the sending device gets the ack, not a push');
    for (const u of ['ann', 'ben', 'cat']) {
      const room = sessions[u].find((x) => x.targetId === 'room');
      for (const list of pushes[u]) {
        for (const p of list.filter((x) => x.data.conversationType === 2)) {
          assert.equal(p.data.sendSession.sid, room.sid, `${u} gets their own sid`);
          assert.equal(p.data.sendSession.title, 'Room');
        }
      }
    }
  } finally {
    for (const u in devices) devices[u].forEach((d) => d.close());
  }
});

test('socket.io-client 2 declares own-messages in its query', async () => {
  const d = await dial('dan', { version: 2, mode: 'polling', capabilities: ['own-messages'] });
  const got = collect(d, 'message');
  try {
    const r = await http(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'dan', targetId: 'ann', messageType: 1, content: { content: 'from dan over HTTP' } });
    assert.equal(r.status, 1);
    await until(() => got.length === 1, 'own push');
    assert.equal(got[0].data.msgId, r.data.msgId);
    assert.equal(got[0].data.own, true);
    assert.equal(got[0].data.sendSession.sid, r.data.sendSession.sid);
  } finally { d.close(); }
});

test('read marks show on the other devices', async () => {
  const a = await dial('ben', { version: 4 });
  const b = await dial('ben', { version: 2 });
  const reads = collect(b, 'session-read');
  try {
    const room = (await call(a, 'session-list')).data.find((x) => x.targetId === 'room');
    await call(a, 'set-session-read', room.sid);
    await until(() => reads.length === 1, 'session-read push');
    assert.equal(reads[0].sid, room.sid);
    assert.equal(reads[0].readSeq, room.lastSeq);
  } finally { a.close(); b.close(); }
});

test('disconnect, miss messages, reconnect: sync returns exactly the gap', async () => {
  let dan = await dial('dan', { version: 4 });
  const ann = await dial('ann', { version: 2 });
  try {
    const first = await call(ann, 'send-private-message', { targetId: 'dan', messageType: 1, content: { content: 'before' } });
    const sid = (await call(dan, 'session-list')).data.find((x) => x.targetId === 'ann').sid;
    const seen = first.data.seq;
    dan.close();
    const missed = [];
    for (let i = 0; i < 5; i++) {
      missed.push((await call(ann, 'send-private-message', { targetId: 'dan', messageType: 1, content: { content: `gap ${i}` } })).data);
    }
    dan = await dial('dan', { version: 4 });
    const sync = await call(dan, 'sync', { sid, afterSeq: seen, limit: 100 });
    assert.equal(sync.err, null);
    assert.deepEqual(sync.data.map((m) => m.msgId), missed.map((m) => m.msgId));
    assert.deepEqual(sync.data.map((m) => m.seq), missed.map((m) => m.seq));
  } finally { dan.close(); ann.close(); }
});

test('clientMsgId makes socket sends idempotent', async () => {
  const s = await dial('ann', { version: 4 });
  try {
    const body = { targetId: 'ben', messageType: 1, content: { content: 'once' }, clientMsgId: 'sock-1' };
    const a = await call(s, 'send-private-message', body);
    const b = await call(s, 'send-private-message', body);
    assert.equal(a.data.msgId, b.data.msgId);
  } finally { s.close(); }
});

for (const version of [2, 4]) {
  test(`a 1 MB+ payload is refused cleanly (client ${version})`, async () => {
    const big = await dial('ann', { version, mode: 'websocket' });
    const other = await dial('ben', { version: 4 });
    try {
      const closed = new Promise((r) => big.once('disconnect', r));
      big.emit('send-private-message', { targetId: 'ben', messageType: 1, content: { content: 'x'.repeat(1_100_000) } });
      await closed;
      const { err } = await call(other, 'session-list');
      assert.equal(err, null, 'the server still serves others');
    } finally { big.close(); other.close(); }
  });
}
