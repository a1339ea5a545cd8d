// The JS SDK (sdk/js/chatd.js) under Node against a real chatd: connect, the
// conversation list, sending and receiving, history paging, read marks,
// uploads, reconnect with gap recovery after a server restart, clientMsgId
// retries, and the node-chat-compatible names.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WS from 'ws';
import { startChatd, createApp, call as http } from '../lib/chatd.mjs';
import { ChatdClient, ChatClient, ChatdError, MessageType } from '../../sdk/js/chatd.js';
import { tokenFor, client, record, until } from './helpers.mjs';

// The tests send bursts faster than a person types.
const unlimited = { CHATD_USER_SEND_RATE: '0' };

let chatd, app;
const tokens = {};
const open = [];

before(async () => {
  chatd = await startChatd({ env: unlimited });
  app = await createApp(chatd.url, 'sdk');
  for (const u of ['ann', 'ben', 'cat', 'dan', 'eve', 'fay']) tokens[u] = await tokenFor(chatd.url, app, u);
  const g = await http(chatd.url, app, 'POST', '/group/create', { groupId: 'crew', name: 'Crew', avatarUri: '', userIds: ['ann', 'ben', 'cat'] });
  assert.equal(g.status, 1);
});
after(async () => {
  for (const c of open) c.close();
  await chatd?.stop();
});

async function dial(user, opts = {}) {
  const c = client(opts.url || chatd.url, app.appId, tokens[user], { userId: user, ...opts });
  open.push(c);
  await c.connect();
  return c;
}

describe('ChatdClient', () => {
  test('connects and lists conversations with the group', async () => {
    const ann = await dial('ann');
    assert.equal(ann.state, 'connected');
    const crew = ann.conversations().find((s) => s.targetId === 'crew');
    assert.ok(crew, 'group listed');
    assert.equal(crew.title, 'Crew');
    assert.equal(crew.conversationType, 2);
  });

  test('a bad token rejects connect with the server message and does not retry', async () => {
    const c = client(chatd.url, app.appId, 'forged.token');
    await assert.rejects(c.connect(), (err) => err instanceof ChatdError && /authentication failed/.test(err.message));
    assert.equal(c.state, 'closed');
  });

  test('two clients exchange messages both ways; unread counts and lastMsg follow', async () => {
    const dan = await dial('dan');
    const eve = await dial('eve');
    const danGot = record(dan);
    const eveGot = record(eve);
    const sent = await dan.sendText('eve', 'hi eve <b>');
    assert.equal(sent.content.content, 'hi eve <b>');
    assert.ok(sent.sid && sent.seq >= 1 && sent.clientMsgId);
    await until(() => eveGot.length === 1, 'eve receives');
    const m = eveGot[0];
    assert.equal(m.msgId, sent.msgId);
    assert.equal(m.senderUserId, 'dan');
    const eveSession = eve.conversation(m.sid);
    assert.equal(eveSession.unread, 1);
    assert.equal(eveSession.lastMsg.content, 'hi eve <b>');
    assert.equal(eveSession.lastMsg.body.content, 'hi eve <b>');
    const listed = (await eve.refreshConversations()).find((s) => s.sid === m.sid);
    assert.deepEqual([listed.lastMsg.content, listed.lastMsg.body], ['hi eve <b>', { content: 'hi eve <b>' }], 'the server lists the same lastMsg');
    assert.equal(eve.conversations()[0].sid, m.sid, 'most recent first');
    // The sender's own send is a message event too, and not unread.
    assert.equal(danGot.length, 1);
    assert.equal(dan.conversation(sent.sid).unread, 0);

    const back = await eve.sendText('dan', 'hi dan');
    await until(() => danGot.length === 2, 'dan receives');
    assert.equal(danGot[1].msgId, back.msgId);
    assert.equal(danGot[1].seq, sent.seq + 1);
    assert.equal(dan.conversation(sent.sid).unread, 1);
  });

  test('group messages reach every member once', async () => {
    const [ann, ben, cat] = [await dial('ann'), await dial('ben'), await dial('cat')];
    const got = [ann, ben, cat].map(record);
    const m = await ben.sendText('crew', 'to the crew', { group: true });
    await until(() => got[0].length === 1 && got[2].length === 1, 'group push');
    for (const g of got) assert.deepEqual(g.map((x) => x.msgId), [m.msgId]);
    assert.equal(cat.conversation(got[2][0].sid).targetId, 'crew');
    await assert.rejects(ann.sendText('crew', 'not a group send'), ChatdError);
  });

  test('history pages older messages without overlap, oldest first', async () => {
    const fay = await dial('fay');
    const dan = await dial('dan');
    let sid;
    for (let i = 1; i <= 25; i++) sid = (await fay.sendText('dan', `line ${i}`)).sid;
    const seen = [];
    let page = await fay.history(sid, { limit: 10 });
    assert.deepEqual(page.map((m) => m.content.content), Array.from({ length: 10 }, (_, i) => `line ${16 + i}`));
    while (page.length) {
      seen.unshift(...page);
      page = await fay.history(sid, { limit: 10, before: page[0].msgId });
    }
    assert.deepEqual(seen.map((m) => m.content.content), Array.from({ length: 25 }, (_, i) => `line ${i + 1}`));
    assert.deepEqual(seen.map((m) => m.seq), Array.from({ length: 25 }, (_, i) => i + 1));
    // dan's side of the same conversation has its own sid and the same messages.
    const dsid = dan.conversations().find((s) => s.targetId === 'fay').sid;
    const dpage = await dan.history(dsid, { limit: 5 });
    assert.equal(dpage.at(-1).content.content, 'line 25');
  });

  test('markRead clears unread and tells the user\'s other devices', async () => {
    const cat1 = await dial('cat');
    const cat2 = await dial('cat');
    const ann = await dial('ann');
    const m = await ann.sendText('cat', 'read me');
    await until(() => cat1.conversations().some((s) => s.lastMsg?.msgId === m.msgId && s.unread > 0), 'cat1 unread');
    await until(() => cat2.conversations().some((s) => s.lastMsg?.msgId === m.msgId && s.unread > 0), 'cat2 unread');
    const sid = cat1.conversations().find((s) => s.targetId === 'ann').sid;
    const reads = [];
    cat2.on('read', (r) => reads.push(r));
    await cat1.markRead(sid);
    assert.equal(cat1.conversation(sid).unread, 0);
    await until(() => reads.length === 1, 'read push');
    assert.equal(reads[0].sid, sid);
    assert.equal(cat2.conversation(sid).unread, 0);
    const fresh = await cat2.refreshConversations();
    assert.equal(fresh.find((s) => s.sid === sid).unread, 0);
  });

  test('upload and send an image', async () => {
    const ann = await dial('ann');
    const ben = await dial('ben');
    const got = record(ben);
    // A 1×1 PNG.
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
    const progress = [];
    const up = await ann.upload(new Blob([png], { type: 'image/png' }), { name: 'dot.png', onProgress: (p) => progress.push(p) });
    assert.ok(up.fid && up.fullUrl);
    assert.ok(progress.length >= 1);
    const res = await fetch(up.fullUrl);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), png);
    const m = await ann.sendImage('ben', up);
    assert.equal(m.messageType, MessageType.IMAGE);
    assert.equal(m.content.url, up.fullUrl);
    await until(() => got.some((x) => x.msgId === m.msgId), 'image push');
  });

  test('an ack lost with the connection is retried with the same clientMsgId and stored once', async () => {
    const ann = await dial('ann');
    const dan = await dial('dan');
    const danGot = record(dan);
    ann.net.dropAcks = true;
    const m = await ann.sendText('dan', 'exactly once');
    const sends = ann.net.sent.filter((s) => s.includes('send-private-message') && s.includes(m.clientMsgId));
    assert.equal(sends.length, 2, 'sent twice, the second after reconnecting');
    const page = await ann.history(m.sid, { limit: 10 });
    assert.equal(page.filter((x) => x.clientMsgId === m.clientMsgId).length, 1);
    await until(() => danGot.some((x) => x.msgId === m.msgId), 'dan receives');
    assert.equal(danGot.filter((x) => x.clientMsgId === m.clientMsgId).length, 1);
  });

  test('a push that skips a seq makes the client sync the missing messages, in order', async () => {
    const ben = await dial('ben');
    const dan = await dial('dan');
    const got = record(dan);
    const first = await ben.sendText('dan', 'gap 0');
    await until(() => got.some((m) => m.msgId === first.msgId), 'first push');
    const syncsBefore = dan.net.sent.filter((s) => s.includes('"sync"')).length;
    dan.net.dropPushes = 2;
    for (const t of ['gap 1', 'gap 2', 'gap 3']) await ben.sendText('dan', t);
    await until(() => got.filter((m) => /^gap [123]$/.test(m.content.content)).length === 3, 'gap filled');
    const tail = got.slice(got.findIndex((m) => m.msgId === first.msgId));
    assert.deepEqual(tail.map((m) => m.content.content), ['gap 0', 'gap 1', 'gap 2', 'gap 3']);
    assert.deepEqual(tail.map((m) => m.seq), [0, 1, 2, 3].map((i) => first.seq + i));
    assert.ok(dan.net.sent.filter((s) => s.includes('"sync"')).length > syncsBefore, 'synced');
  });

  test('a push delivered twice is shown once', async () => {
    const cat = await dial('cat');
    const eve = await dial('eve');
    const got = record(eve);
    eve.net.doublePushes = true;
    const sent = [];
    for (const t of ['twice 1', 'twice 2']) sent.push(await cat.sendText('eve', t));
    await until(() => got.filter((m) => m.content.content.startsWith('twice')).length >= 2, 'pushes');
    await cat.sendText('eve', 'twice end');
    await until(() => got.some((m) => m.content.content === 'twice end'), 'last push');
    assert.deepEqual(got.map((m) => m.content.content), ['twice 1', 'twice 2', 'twice end']);
    assert.equal(eve.conversation(got[0].sid).unread, 3);
  });

  test('sends made while disconnected go out after reconnecting', async () => {
    const eve = await dial('eve');
    const fay = await dial('fay');
    const fayGot = record(fay);
    eve.net.offline = true;
    eve.net.cut();
    await until(() => eve.state === 'reconnecting', 'reconnecting');
    const p = eve.sendText('fay', 'queued while offline');
    eve.net.offline = false;
    const m = await p;
    await until(() => fayGot.some((x) => x.msgId === m.msgId), 'fay receives');
  });
});

describe('reconnect after a server restart', () => {
  test('missed messages are synced once, in order, with nothing lost or duplicated', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'chatd-sdk-restart-'));
    let srv = await startChatd({ dataDir, env: unlimited });
    try {
      const rapp = await createApp(srv.url, 'restart');
      const tk = {};
      for (const u of ['ann', 'ben', 'cat']) tk[u] = await tokenFor(srv.url, rapp, u);
      assert.equal((await http(srv.url, rapp, 'POST', '/group/create', { groupId: 'g', name: 'G', avatarUri: '', userIds: ['ann', 'ben', 'cat'] })).status, 1);
      const mk = (u) => { const c = client(srv.url, rapp.appId, tk[u], { userId: u }); open.push(c); return c; };
      const ann = mk('ann');
      const ben = mk('ben');
      await Promise.all([ann.connect(), ben.connect()]);
      const benGot = record(ben);
      const states = [];
      ben.on('state', (s) => states.push(s));

      for (let i = 1; i <= 3; i++) await ann.sendText('ben', `before ${i}`);
      await ann.sendText('g', 'group before', { group: true });
      await until(() => benGot.length === 4, 'pushes before restart');

      // Restart chatd on the same port and data; ben stays offline until
      // messages have been sent without him.
      ben.net.offline = true;
      await srv.stop();
      await until(() => ben.state === 'reconnecting' && ann.state === 'reconnecting', 'both reconnecting');
      srv = await startChatd({ dataDir, port: srv.port, env: unlimited });
      await ann.connect();
      for (let i = 1; i <= 120; i++) await ann.sendText('ben', `during ${i}`); // more than a sync page
      await ann.sendText('g', 'group during', { group: true });
      await http(srv.url, rapp, 'POST', '/private/send/message', { senderUserId: 'cat', targetId: 'ben', messageType: 1, content: { content: 'from cat over http' } });
      ben.net.offline = false;
      await ben.connect();
      await until(() => benGot.length === 4 + 122, 'recovered messages');
      // A push arriving after recovery is still delivered once.
      await ann.sendText('ben', 'after');
      await until(() => benGot.length === 4 + 123, 'live push after recovery');

      const ids = benGot.map((m) => m.msgId);
      assert.equal(new Set(ids).size, ids.length, 'no duplicates');
      const fromAnn = benGot.filter((m) => m.senderUserId === 'ann' && m.conversationType === 1).map((m) => m.content.content);
      assert.deepEqual(fromAnn, ['before 1', 'before 2', 'before 3', ...Array.from({ length: 120 }, (_, i) => `during ${i + 1}`), 'after']);
      const bySid = new Map();
      for (const m of benGot) bySid.set(m.sid, [...(bySid.get(m.sid) || []), m.seq]);
      for (const seqs of bySid.values()) assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'gapless per conversation');
      assert.ok(states.includes('reconnecting') && states.at(-1) === 'connected');
      const annSid = ben.conversations().find((s) => s.targetId === 'ann');
      assert.equal(annSid.unread, 124, 'unread counts every message from ann once');
      assert.ok(ben.net.sent.some((s) => s.includes('"sync"')), 'recovered through sync');
    } finally {
      await srv.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('node-chat compatible names', () => {
  test('ChatClient init, sessions, send, receive, history, read, upload, callbacks', async () => {
    const ann = new ChatClient(app.appId, tokens.ann, chatd.url, { WebSocket: WS });
    const ben = new ChatClient(app.appId, tokens.ben, chatd.url, { WebSocket: WS });
    open.push(ann.client, ben.client);
    let connected = 0;
    ann.onConnected(() => connected++);
    await ann.init();
    await new Promise((resolve, reject) => ben.init((err) => (err ? reject(err) : resolve())));
    assert.equal(connected, 1);
    const envs = [];
    ben.onMessage((e) => envs.push(e));
    const sessions = await ann.getMessageSessions();
    assert.ok(Array.isArray(sessions) && sessions.some((s) => s.targetId === 'crew'));
    const r = await ann.sendPrivateMessage('ben', 1, { content: 'compat hello' });
    assert.equal(r.content.content, 'compat hello');
    const r2 = await ann.sendPrivateMessage({ targetId: 'ben', messageType: 1, content: JSON.stringify({ content: 'as a string' }) });
    assert.equal(r2.content.content, 'as a string');
    const g = await new Promise((resolve, reject) => ann.sendGroupMessage('crew', 1, { content: 'compat group' }, (err, d) => (err ? reject(err) : resolve(d))));
    assert.equal(g.conversationType, 2);
    await until(() => envs.length === 3, 'ben gets envelopes');
    assert.equal(envs[0].status, 1);
    assert.equal(envs[0].type, 'user');
    assert.equal(envs[0].data.content.content, 'compat hello');
    assert.ok(envs[0].data.sendSession.sid);
    const sid = envs[0].data.sendSession.sid;
    const page = await ben.getSessionMessages(sid, 2);
    assert.deepEqual(page.map((m) => m.content.content), ['as a string', 'compat hello'], 'newest first');
    const older = await ben.getSessionMessages(sid, { limit: 10, lastmsgId: page[1].msgId });
    assert.ok(older.every((m) => m.seq < page[1].seq));
    assert.deepEqual(await ben.setMessageSessionRead(sid), []);
    const up = await ann.uploadFile(new Blob(['plain text'], { type: 'text/plain' }));
    assert.ok(up.fullUrl);
    let disconnected = 0;
    ben.onDisconnected(() => disconnected++);
    ben.client._ws.close(); // a dropped connection reports onDisconnected, then reconnects
    await until(() => disconnected === 1 && ben.client.state === 'connected', 'disconnect and reconnect');
    ann.close();
    ben.close();
    await assert.rejects(ann.getMessageSessions(), ChatdError);
  });

  test('ChatdClient needs a WebSocket under Node', () => {
    assert.throws(() => new ChatdClient({ url: chatd.url, appId: app.appId, token: tokens.ann }), /WebSocket/);
  });
});
