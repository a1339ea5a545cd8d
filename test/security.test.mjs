// Authorization and abuse limits: a user reaches only their own sessions,
// messages and files; an app never sees another app's data; revoked tokens
// are refused and their sockets closed; floods get 429s or error acks while
// everyone else is served.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call as http, ADMIN_KEY } from './lib/chatd.mjs';
import { connect, call, sleep } from './lib/clients.mjs';

describe('authorization matrix', () => {
  let chatd, appA, appB;
  const tok = { A: {}, B: {} };
  const sids = {};
  let fileUrl;
  before(async () => {
    chatd = await startChatd();
    appA = await createApp(chatd.url, 'A');
    appB = await createApp(chatd.url, 'B');
    for (const [app, key] of [[appA, 'A'], [appB, 'B']]) {
      for (const u of ['alice', 'bob', 'eve']) {
        tok[key][u] = (await http(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: `${key}-${u}`, avatarUri: '' })).data.token;
      }
    }
    // In app A: alice ↔ bob privately, and a group alice+bob; eve is outside both.
    await http(chatd.url, appA, 'POST', '/private/send/message', { senderUserId: 'alice', targetId: 'bob', messageType: 1, content: { content: 'secret A' } });
    await http(chatd.url, appA, 'POST', '/group/create', { groupId: 'g', name: 'G', userIds: ['alice', 'bob'] });
    await http(chatd.url, appA, 'POST', '/group/send/message', { senderUserId: 'bob', targetId: 'g', messageType: 1, content: { content: 'group secret' } });
    const list = (await http(chatd.url, appA, 'GET', '/user/sessions', { userId: 'alice' })).data;
    sids.private = list.find((s) => s.conversationType === 1).sid;
    sids.group = list.find((s) => s.conversationType === 2).sid;
    const form = new FormData();
    form.append('up_file', new Blob([Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64')]), 'a.png');
    fileUrl = (await (await fetch(`${chatd.url}/file/upload?appId=${appA.appId}&token=${encodeURIComponent(tok.A.alice)}`, { method: 'POST', body: form })).json()).data.fullUrl;
  });
  after(async () => { await chatd?.stop(); });

  test("app B's signed calls never see app A's data", async () => {
    const s = await http(chatd.url, appB, 'GET', '/user/sessions', { userId: 'alice' });
    assert.equal(s.status, 1);
    assert.deepEqual(s.data, [], "B's alice is not A's alice");
    const h = await http(chatd.url, appB, 'GET', '/session/messages', { userId: 'alice', targetId: 'bob', conversationType: 1 });
    assert.deepEqual(h.data, []);
    const g = await http(chatd.url, appB, 'GET', '/session/messages', { userId: 'alice', targetId: 'g', conversationType: 2 });
    assert.notEqual(g.status, 1);
    const send = await http(chatd.url, appB, 'POST', '/group/send/message', { senderUserId: 'alice', targetId: 'g', messageType: 1, content: { content: 'x' } });
    assert.notEqual(send.status, 1);
    const join = await http(chatd.url, appB, 'POST', '/group/join', { groupId: 'g', userIds: ['eve'] });
    assert.notEqual(join.status, 1, "B cannot join A's group");
  });

  test("a request signed with app B's secret is refused for app A", async () => {
    const r = await http(chatd.url, { appId: appA.appId, appSecret: appB.appSecret }, 'GET', '/user/sessions', { userId: 'alice' });
    assert.equal(r.status, 1004);
  });

  test("app A's token does not open a socket or upload for app B", async () => {
    await assert.rejects(connect(chatd.url, { appId: appB.appId, token: tok.A.alice }), /authentication failed/);
    const form = new FormData();
    form.append('up_file', new Blob(['hello']), 'a.txt');
    const res = await fetch(`${chatd.url}/file/upload?appId=${appB.appId}&token=${encodeURIComponent(tok.A.alice)}`, { method: 'POST', body: form });
    assert.equal(res.status, 401);
  });

  test("eve's socket cannot read, mark or sync alice's sessions, nor post to her group", async () => {
    const eve = await connect(chatd.url, { appId: appA.appId, token: tok.A.eve });
    try {
      for (const sid of [sids.private, sids.group]) {
        for (const [ev, arg] of [['session-message-list', { sid }], ['set-session-read', sid], ['sync', { sid, afterSeq: 0 }]]) {
          const r = await call(eve, ev, arg);
          assert.ok(r.err, `${ev} on someone else's sid is refused`);
          assert.match(r.err.message, /not found/);
          assert.equal(r.data, undefined);
        }
      }
      const g = await call(eve, 'send-group-message', { targetId: 'g', messageType: 1, content: { content: 'let me in' } });
      assert.match(g.err.message, /not a member/);
      const list = await call(eve, 'session-list');
      assert.deepEqual(list.data, [], 'eve sees no session of others');
      const spoof = await call(eve, 'send-private-message', { senderUserId: 'alice', targetId: 'bob', messageType: 1, content: { content: 'from "alice"' } });
      assert.equal(spoof.data.senderUserId, 'eve', 'senderUserId in a payload cannot impersonate');
    } finally { eve.close(); }
  });

  test("app B cannot change app A's group", async () => {
    const rm = await http(chatd.url, appB, 'POST', '/group/remove', { groupId: 'g', userIds: ['alice'] });
    assert.notEqual(rm.status, 1, "B cannot remove from A's group");
    const mk = await http(chatd.url, appB, 'POST', '/group/create', { groupId: 'g', name: 'Hijack', userIds: ['eve'] });
    assert.equal(mk.status, 1, "B's own group g is B's");
    const a = (await http(chatd.url, appA, 'GET', '/user/sessions', { userId: 'alice' })).data.find((s) => s.targetId === 'g');
    assert.equal(a.title, 'G', "A's group keeps its name");
    const eve = (await http(chatd.url, appA, 'GET', '/user/sessions', { userId: 'eve' })).data;
    assert.deepEqual(eve.filter((x) => x.conversationType === 2), [], "A's eve is in no group");
  });

  test("conversation settings and blocks stay within the user and the app", async () => {
    const eve = await connect(chatd.url, { appId: appA.appId, token: tok.A.eve });
    try {
      for (const sid of [sids.private, sids.group]) {
        for (const [ev, arg] of [['session-update', { sid, muted: true }], ['session-hide', sid]]) {
          const r = await call(eve, ev, arg);
          assert.match(r.err?.message || '', /not found/, `${ev} on someone else's sid is refused`);
        }
        for (const [app, userId] of [[appB, 'alice'], [appA, 'eve']]) {
          const r = await http(chatd.url, app, 'POST', '/session/update', { userId, sid, pinned: true });
          assert.equal(r.httpStatus, 404, `/session/update by ${userId} of another app or user`);
          const h = await http(chatd.url, app, 'POST', '/session/hide', { userId, sid });
          assert.equal(h.httpStatus, 404);
        }
      }
      // A block in app B does not reach app A's users.
      await http(chatd.url, appB, 'POST', '/user/block', { userId: 'bob', blockedUserIds: ['alice'] });
      const sent = await http(chatd.url, appA, 'POST', '/private/send/message', { senderUserId: 'alice', targetId: 'bob', messageType: 1, content: { content: 'still fine' } });
      assert.equal(sent.status, 1);
      assert.deepEqual((await http(chatd.url, appA, 'GET', '/user/blocked', { userId: 'bob' })).data, { blocked: [] });
      assert.deepEqual((await call(eve, 'blocked-list')).data, { blocked: [] }, "eve's list is her own");
      const r = await http(chatd.url, { appId: appA.appId, appSecret: appB.appSecret }, 'POST', '/user/block', { userId: 'bob', blockedUserIds: ['alice'] });
      assert.equal(r.status, 1004, "app B's secret cannot block for app A");
    } finally { eve.close(); }
  });

  test('non-media uploads are served as attachments', async () => {
    const form = new FormData();
    form.append('up_file', new Blob(['%PDF-1.4\n1 0 obj\n<<>>\nendobj\n']), 'doc.pdf');
    const up = await (await fetch(`${chatd.url}/file/upload?appId=${appA.appId}&token=${encodeURIComponent(tok.A.bob)}`, { method: 'POST', body: form })).json();
    assert.equal(up.status, 1, JSON.stringify(up));
    const res = await fetch(up.data.fullUrl);
    assert.equal(res.headers.get('content-type'), 'application/pdf');
    assert.match(res.headers.get('content-disposition'), /^attachment/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const img = await fetch(fileUrl);
    assert.match(img.headers.get('content-disposition'), /^inline/);
  });

  test('files are reachable only through their unguessable name and app', async () => {
    assert.equal((await fetch(fileUrl)).status, 200);
    assert.equal((await fetch(fileUrl.replace(appA.appId, appB.appId))).status, 404);
    const guessed = fileUrl.replace(/\/[0-9a-f]{32}/, '/' + '0'.repeat(32));
    assert.equal((await fetch(guessed)).status, 404);
  });
});

describe('revocation', () => {
  let chatd, app;
  before(async () => { chatd = await startChatd(); app = await createApp(chatd.url, 'rev'); });
  after(async () => { await chatd?.stop(); });

  test("revoking a user's tokens closes their live sockets and refuses the old token", async () => {
    const token = (await http(chatd.url, app, 'POST', '/user/getToken', { userId: 'r', name: 'R', avatarUri: '' })).data.token;
    const a = await connect(chatd.url, { appId: app.appId, token, version: 4 });
    const b = await connect(chatd.url, { appId: app.appId, token, version: 2 });
    const closed = Promise.all([a, b].map((s) => new Promise((r) => s.once('disconnect', r))));
    const r = await http(chatd.url, app, 'POST', '/user/revokeToken', { userId: 'r' });
    assert.equal(r.status, 1, JSON.stringify(r));
    await closed;
    await assert.rejects(connect(chatd.url, { appId: app.appId, token }), /revoked/);
    const fresh = (await http(chatd.url, app, 'POST', '/user/getToken', { userId: 'r', name: 'R', avatarUri: '' })).data.token;
    assert.notEqual(fresh, token);
    const c = await connect(chatd.url, { appId: app.appId, token: fresh });
    c.close();
  });
});

describe('limits', () => {
  let chatd, app;
  const tokens = {};
  before(async () => {
    chatd = await startChatd({ env: {
      CHATD_USER_SEND_RATE: '1', CHATD_USER_SEND_BURST: '3', CHATD_HANDSHAKE_RATE_IP: '0.5', CHATD_HANDSHAKE_BURST_IP: '6',
      CHATD_MAX_USER_SOCKETS: '2', CHATD_MAX_CONTENT_BYTES: '1000', CHATD_MAX_BODY_BYTES: '4096', CHATD_HISTORY_LIMIT: '7',
    } });
    app = await createApp(chatd.url, 'limits');
    for (const u of ['fast', 'calm', 'sock']) {
      tokens[u] = (await http(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u, avatarUri: '' })).data.token;
    }
  });
  after(async () => { await chatd?.stop(); });

  test('a user sending too fast gets HTTP 429 and others are unaffected', async () => {
    const codes = [];
    for (let i = 0; i < 6; i++) {
      const r = await http(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'fast', targetId: 'calm', messageType: 1, content: { content: `${i}` } });
      codes.push(r.httpStatus);
    }
    assert.deepEqual(codes.slice(0, 3), [200, 200, 200]);
    assert.ok(codes.slice(3).every((c) => c === 429), codes.join(','));
    const other = await http(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'calm', targetId: 'fast', messageType: 1, content: { content: 'fine' } });
    assert.equal(other.status, 1);
    const m = await (await fetch(chatd.url + '/metrics')).text();
    assert.match(m, /^chatd_sends_rate_limited_total [1-9]/m);
  });

  test('socket sends past the rate get an error ack, and the socket stays usable', async () => {
    const s = await connect(chatd.url, { appId: app.appId, token: tokens.sock });
    try {
      const replies = [];
      for (let i = 0; i < 5; i++) replies.push(await call(s, 'send-private-message', { targetId: 'calm', messageType: 1, content: { content: `${i}` } }));
      const limited = replies.filter((r) => r.err);
      assert.equal(limited.length, 2);
      assert.match(limited[0].err.message, /too fast/);
      assert.equal((await call(s, 'session-list')).err, null);
    } finally { s.close(); }
  });

  test('a user holds at most CHATD_MAX_USER_SOCKETS sockets', async () => {
    const a = await connect(chatd.url, { appId: app.appId, token: tokens.calm });
    const b = await connect(chatd.url, { appId: app.appId, token: tokens.calm, version: 2 });
    try {
      await assert.rejects(connect(chatd.url, { appId: app.appId, token: tokens.calm }), /too many connections/);
      assert.equal((await call(a, 'session-list')).err, null, 'the first two keep working');
    } finally { a.close(); b.close(); }
  });

  test('oversized bodies and contents get clear errors; history pages are capped', async () => {
    const big = await http(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'calm', targetId: 'sock', messageType: 1, content: { content: 'x'.repeat(1200) } });
    assert.equal(big.httpStatus, 413);
    assert.match(big.message, /content is larger than 1000 bytes/);
    const huge = await http(chatd.url, app, 'POST', '/user/getToken', { userId: 'x', name: 'y'.repeat(5000), avatarUri: '' });
    assert.equal(huge.httpStatus, 413);
    assert.match(huge.message, /request body is larger/);
    // Nine messages from three users (each within their send burst of 3).
    const hs = ['h1', 'h2', 'h3'];
    for (const u of hs) await http(chatd.url, app, 'POST', '/user/getToken', { userId: u, name: u, avatarUri: '' });
    await http(chatd.url, app, 'POST', '/group/create', { groupId: 'hist', name: 'H', userIds: hs });
    for (let i = 0; i < 9; i++) {
      const r = await http(chatd.url, app, 'POST', '/group/send/message', { senderUserId: hs[i % 3], targetId: 'hist', messageType: 1, content: { content: `${i}` } });
      assert.equal(r.status, 1, JSON.stringify(r));
    }
    const page = await http(chatd.url, app, 'GET', '/session/messages', { userId: 'h1', targetId: 'hist', conversationType: 2, limit: 1000 });
    assert.equal(page.status, 1);
    assert.equal(page.data.length, 7, 'limit is capped by CHATD_HISTORY_LIMIT');
  });

  test('new socket sessions from one address past the burst get 429', async () => {
    const opened = [];
    let refused = 0;
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${chatd.url}/socket.io/?EIO=4&transport=polling`);
      if (res.status === 429) refused++;
      else opened.push(res.status);
      await res.text();
    }
    assert.ok(refused >= 3, `${refused} of 8 refused`);
    assert.ok(opened.every((c) => c === 200));
  });
});

test('secrets never reach the log', async () => {
  const chatd = await startChatd({ env: { CHATD_LOG_LEVEL: 'debug' } });
  let app, token;
  try {
    app = await createApp(chatd.url, 'logs');
    token = (await http(chatd.url, app, 'POST', '/user/getToken', { userId: 'l', name: 'l', avatarUri: '' })).data.token;
    // A mix of good and bad requests, signed and not, HTTP and sockets.
    await http(chatd.url, { appId: app.appId, appSecret: 'wrong' }, 'GET', '/user/sessions', { userId: 'l' });
    await http(chatd.url, app, 'POST', '/private/send/message', { senderUserId: 'l', targetId: 'nobody', messageType: 1, content: {} });
    await fetch(`${chatd.url}/file/upload?appId=${app.appId}&token=${encodeURIComponent(token)}x`, { method: 'POST' });
    const s = await connect(chatd.url, { appId: app.appId, token });
    await call(s, 'sync', { sid: 'bad' });
    s.close();
    await assert.rejects(connect(chatd.url, { appId: app.appId, token: token + 'x' }));
  } finally { await chatd.stop(); }
  const log = chatd.stderr();
  assert.ok(log.length > 0, 'chatd logged something');
  for (const [what, secret] of [['app secret', app.appSecret], ['token', token], ['admin key', ADMIN_KEY]]) {
    assert.ok(!log.includes(secret), `the ${what} appears in the log`);
    assert.ok(!log.includes(secret.slice(0, 16)), `part of the ${what} appears in the log`);
  }
});

test('/metrics shows sockets and returns to its baseline after clients leave', async () => {
  const chatd = await startChatd();
  try {
    const app = await createApp(chatd.url, 'metrics');
    const token = (await http(chatd.url, app, 'POST', '/user/getToken', { userId: 'm', name: 'm', avatarUri: '' })).data.token;
    const gauge = async (name) => Number((await (await fetch(chatd.url + '/metrics')).text()).match(new RegExp(`^${name} (\\d+)`, 'm'))[1]);
    // steady: the gauge once it has kept one value for ten reads in a row
    // (the first socket's goroutines end after its close is counted).
    const steady = async (name) => {
      let v = await gauge(name);
      for (let same = 0, t = Date.now() + 10000; same < 10 && Date.now() < t;) {
        await sleep(10);
        const w = await gauge(name);
        same = w === v ? same + 1 : 0;
        v = w;
      }
      return v;
    };
    // The websocket poller and writer pool start with the first socket and
    // stay: the baseline is taken once one socket has come and gone.
    const first = await connect(chatd.url, { appId: app.appId, token, version: 4 });
    first.close();
    for (let t = Date.now() + 10000; (await gauge('chatd_sockets')) !== 0 && Date.now() < t;) await sleep(50);
    const baseGoroutines = await steady('go_goroutines');
    const socks = [];
    for (let i = 0; i < 20; i++) socks.push(await connect(chatd.url, { appId: app.appId, token, version: i % 2 ? 2 : 4 }));
    assert.equal(await gauge('chatd_sockets'), 20);
    socks.forEach((s) => s.close());
    const deadline = Date.now() + 10000;
    while ((await gauge('chatd_sockets')) !== 0 && Date.now() < deadline) await sleep(50);
    assert.equal(await gauge('chatd_sockets'), 0);
    while ((await gauge('go_goroutines')) > baseGoroutines + 2 && Date.now() < deadline) await sleep(50);
    assert.ok((await gauge('go_goroutines')) <= baseGoroutines + 2, 'goroutines return to the baseline');
  } finally { await chatd.stop(); }
});
