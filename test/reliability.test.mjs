// Crashes and restarts lose nothing: SIGKILL while clients send, restart on
// the same data, and every acknowledged message is there exactly once with
// gapless seqs; SIGTERM lets in-flight sends finish, refuses new connections,
// and socket clients reconnect once chatd is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { startChatd, createApp, call, freePort, exited } from './lib/chatd.mjs';
import { call as emit, until } from './lib/clients.mjs';

const unlimited = { CHATD_USER_SEND_RATE: '0', CHATD_APP_SEND_RATE: '0' };

async function setup(chatd, users) {
  const app = await createApp(chatd.url, 'reliability');
  const tokens = {};
  for (const u of users) {
    tokens[u] = (await call(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u, avatarUri: '' })).data.token;
  }
  assert.equal((await call(chatd.url, app, 'POST', '/group/create', { groupId: 'all', name: 'All', userIds: users })).status, 1);
  return { app, tokens };
}

// history pages through a conversation as user, oldest last, and returns all messages.
async function history(url, app, userId, targetId, conversationType) {
  const all = [];
  let lastmsgId;
  for (;;) {
    const p = { userId, targetId, conversationType, limit: 100 };
    if (lastmsgId) p.lastmsgId = lastmsgId;
    const r = await call(url, app, 'GET', '/session/messages', p);
    assert.equal(r.status, 1, JSON.stringify(r));
    if (r.data.length === 0) return all;
    all.push(...r.data);
    lastmsgId = r.data.at(-1).msgId;
  }
}

function checkConversation(msgs, acked, label) {
  const seqs = msgs.map((m) => m.seq).sort((a, b) => a - b);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), `${label}: seqs are gapless from 1`);
  const ids = new Set(msgs.map((m) => m.msgId));
  assert.equal(ids.size, msgs.length, `${label}: no message twice`);
  const clientIds = msgs.map((m) => m.clientMsgId).filter(Boolean);
  assert.equal(new Set(clientIds).size, clientIds.length, `${label}: no clientMsgId stored twice`);
  for (const a of acked) assert.ok(ids.has(a.msgId), `${label}: acknowledged message ${a.msgId} (seq ${a.seq}) survived`);
}

test('SIGKILL while sending loses no acknowledged message', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chatd-crash-'));
  const port = await freePort();
  const users = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
  try {
    let chatd = await startChatd({ dataDir, port, env: unlimited });
    const { app } = await setup(chatd, users);
    const acked = { group: [], private: [] };
    const unacked = [];
    let stop = false;
    const sender = async (u, i) => {
      for (let n = 0; !stop; n++) {
        const group = n % 2 === 0;
        const body = {
          senderUserId: u, targetId: group ? 'all' : users[(i + 1) % users.length],
          messageType: 1, content: { content: `${u} #${n}` }, clientMsgId: `${u}-${n}`,
        };
        try {
          const r = await call(chatd.url, app, 'POST', group ? '/group/send/message' : '/private/send/message', body);
          if (r.status === 1) (group ? acked.group : acked.private).push({ ...r.data, from: u, to: body.targetId });
          else unacked.push({ body, group });
        } catch {
          unacked.push({ body, group });
          return; // the server is gone
        }
      }
    };
    const senders = users.map((u, i) => sender(u, i));
    await until(() => acked.group.length + acked.private.length >= 300, 'some traffic', 30000);
    chatd.proc.kill('SIGKILL');
    await exited(chatd.proc);
    stop = true;
    await Promise.all(senders);
    assert.ok(acked.group.length > 0 && acked.private.length > 0);

    chatd = await startChatd({ dataDir, port, env: unlimited });
    try {
      // Retrying what was never acknowledged, with the same clientMsgId, never duplicates.
      for (const { body, group } of unacked) {
        const r = await call(chatd.url, app, 'POST', group ? '/group/send/message' : '/private/send/message', body);
        assert.equal(r.status, 1, JSON.stringify(r));
      }
      checkConversation(await history(chatd.url, app, 'k0', 'all', 2), acked.group, 'group');
      const pairs = new Map();
      for (const m of acked.private) {
        const key = [m.from, m.to].sort().join('|');
        if (!pairs.has(key)) pairs.set(key, []);
        pairs.get(key).push(m);
      }
      for (const [key, list] of pairs) {
        const [a, b] = key.split('|');
        checkConversation(await history(chatd.url, app, a, b, 1), list, key);
      }
    } finally { await chatd.stop(); }
  } finally { rmSync(dataDir, { recursive: true, force: true }); }
});

test('SIGTERM finishes in-flight sends, refuses new connections, and clients reconnect after restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chatd-term-'));
  const port = await freePort();
  const users = ['t0', 't1', 't2', 't3'];
  try {
    let chatd = await startChatd({ dataDir, port, env: { ...unlimited, CHATD_SHUTDOWN_TIMEOUT: '10s' } });
    const { app, tokens } = await setup(chatd, users);
    const sock = io(chatd.url, {
      auth: { token: tokens.t1, appId: app.appId }, transports: ['websocket'], forceNew: true,
      reconnectionDelay: 100, reconnectionDelayMax: 500,
    });
    await new Promise((r) => sock.once('connect', r));
    let disconnects = 0;
    sock.on('disconnect', () => disconnects++);
    // A long-polling client must not hold the shutdown up, and a socket with
    // sends in flight gets their acks before its connection closes.
    const poller = io(chatd.url, { auth: { token: tokens.t2, appId: app.appId }, transports: ['polling'], forceNew: true, reconnection: false });
    const sender = io(chatd.url, { auth: { token: tokens.t3, appId: app.appId }, transports: ['websocket'], forceNew: true, reconnection: false });
    await Promise.all([poller, sender].map((x) => new Promise((r) => x.once('connect', r))));

    // Many sends in flight at once, then SIGTERM.
    const inflight = [];
    for (let n = 0; n < 200; n++) {
      inflight.push(call(chatd.url, app, 'POST', '/group/send/message', {
        senderUserId: users[n % 4], targetId: 'all', messageType: 1, content: { content: `m${n}` }, clientMsgId: `term-${n}`,
      }).then((r) => ({ ok: r.status === 1, r }), (e) => ({ ok: false, e })));
    }
    const socketAcks = [];
    const senderGone = new Promise((r) => sender.once('disconnect', r));
    for (let n = 0; n < 100; n++) {
      socketAcks.push(new Promise((resolve) => {
        sender.emit('send-group-message', { targetId: 'all', messageType: 1, content: { content: `s${n}` }, clientMsgId: `sock-${n}` },
          (err, data) => resolve({ err, data }));
        senderGone.then(() => resolve({ lost: true }));
      }));
    }
    // SIGTERM once chatd is answering: the first completed send is the
    // barrier, and the rest are in flight or queued behind it.
    await Promise.race([...inflight, ...socketAcks]);
    chatd.proc.kill('SIGTERM');
    const results = await Promise.all(inflight);
    const socketResults = await Promise.all(socketAcks);
    poller.close();
    sender.close();
    const acked = results.filter((x) => x.ok).map((x) => x.r.data);
    for (const x of results) {
      if (x.r) assert.equal(x.r.status, 1, 'a request chatd accepted is completed, never failed by the shutdown');
    }
    await exited(chatd.proc);
    assert.equal(chatd.proc.exitCode, 0, 'a graceful exit');
    await until(() => disconnects >= 1, 'the socket notices the shutdown');

    // Nothing listens any more: new connections are refused.
    await assert.rejects(fetch(chatd.url + '/healthz'));

    chatd = await startChatd({ dataDir, port, env: unlimited });
    try {
      await until(() => sock.connected, 'the client reconnects by itself', 15000);
      const { err, data } = await emit(sock, 'session-list');
      assert.equal(err, null);
      assert.ok(data.some((s) => s.targetId === 'all'));
      const msgs = await history(chatd.url, app, 't0', 'all', 2);
      const socketAcked = socketResults.filter((x) => x.data).map((x) => x.data);
      for (const x of socketResults) {
        if (x.err) assert.match(x.err.message, /shutting down/, 'a socket send refused during shutdown says so');
      }
      assert.ok(socketAcked.length > 0, 'socket sends in flight were acknowledged');
      checkConversation(msgs, [...acked, ...socketAcked], 'group');
      assert.ok(acked.length > 0, 'some sends were acknowledged');
    } finally { sock.close(); await chatd.stop(); }
  } finally { rmSync(dataDir, { recursive: true, force: true }); }
});
