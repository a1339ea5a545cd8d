// Exactly once under network chaos: several SDK clients, each behind its own
// loopback TCP proxy that cuts its connections (with FIN and with RST), keeps
// it offline for a while and delays chunks at random, exchange private and
// group messages with each other and with the HTTP API. Afterwards, for
// every client, every stored message of its conversations was emitted
// exactly once and in seq order per conversation, and every resolved send is
// stored exactly once (checked against the signed HTTP API).
//
// Meanwhile the clients edit and recall their own messages and react to and
// unreact from the others' (through the SDK, under the same chaos). At the
// end every client's state of every message, built only from its 'message'
// and 'message-updated' events (content, edits, recall, reactions with counts
// and "me"), equals a fresh history fetch for its user.
//
// A seeded PRNG drives the schedule (who sends what, when, which cuts and
// delays); the network's own timing is real, so a seed replays the schedule,
// not every interleaving. A failing seed is printed.
//   CHATD_CHAOS_SEED=42            replay one seed
//   CHATD_CHAOS_SEEDS=1-20 | 3,9   run these seeds (default: 3 random seeds)
//   CHATD_CHAOS_MS=3000            traffic time per seed
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { startChatd, createApp, call as http } from '../lib/chatd.mjs';
import { tokenFor, client, record, until } from './helpers.mjs';
import { TcpProxy } from './proxy.mjs';

const TRAFFIC_MS = Number(process.env.CHATD_CHAOS_MS) || 3000;
const SEEDS = chaosSeeds();

function chaosSeeds() {
  if (process.env.CHATD_CHAOS_SEED) return [Number(process.env.CHATD_CHAOS_SEED)];
  const spec = process.env.CHATD_CHAOS_SEEDS;
  if (!spec) {
    const base = randomInt(1, 1e9);
    return [base, base + 1, base + 2];
  }
  const out = [];
  for (const part of spec.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let s = a; s <= (b ?? a); s++) out.push(s);
  }
  if (!out.length || out.some((s) => !Number.isSafeInteger(s))) throw new Error(`CHATD_CHAOS_SEEDS: bad list ${spec}`);
  return out;
}

// prng is mulberry32: small, fast and good enough to schedule chaos.
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // lo..hi inclusive
  next.pick = (xs) => xs[Math.floor(next() * xs.length)];
  return next;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let chatd;
before(async () => {
  chatd = await startChatd({ env: { CHATD_USER_SEND_RATE: '0', CHATD_APP_SEND_RATE: '0', CHATD_HANDSHAKE_RATE_IP: '0', CHATD_USER_EVENT_RATE: '0' } });
});
after(async () => { await chatd?.stop(); });

// The cast: u0 has two devices, so its own messages reach its other device;
// u5 has none and is reached over the HTTP API. With six users, private
// conversations keep starting while the chaos runs; g3 is created midway.
const USERS = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];
const DEVICES = ['u0', 'u0', 'u1', 'u2', 'u3', 'u4'];
const GROUPS = { g1: ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'], g2: ['u0', 'u1', 'u2'], g3: ['u2', 'u3', 'u4', 'u5'] };

for (const seed of SEEDS) {
  test(`chaos seed ${seed}`, { timeout: TRAFFIC_MS + 20000 }, async (t) => {
    try {
      await run(seed, t);
    } catch (err) {
      console.error(`chaos: seed ${seed} failed; replay with CHATD_CHAOS_SEED=${seed}`);
      throw err;
    }
  });
}

async function run(seed, t) {
  const rnd = prng(seed);
  const app = await createApp(chatd.url, `chaos ${seed}`);
  const tokens = {};
  for (const u of USERS) tokens[u] = await tokenFor(chatd.url, app, u);
  for (const g of ['g1', 'g2']) {
    assert.equal((await http(chatd.url, app, 'POST', '/group/create', { groupId: g, name: g, avatarUri: '', userIds: GROUPS[g] })).status, 1);
  }
  const groupsNow = new Set(['g1', 'g2']);

  const stats = { sdkSends: 0, httpSends: 0, cuts: 0, offline: 0, changes: 0, changesFailed: 0, kinds: {} };
  const devices = [];
  for (const [i, user] of DEVICES.entries()) {
    const net = prng(seed * 31 + i); // each proxy's delays have their own stream
    const proxy = await new TcpProxy({ host: '127.0.0.1', port: chatd.port }, {
      delay: () => (chaos.on && net() < 0.3 ? net.int(1, 40) : 0),
    }).listen();
    const c = client(proxy.url, app.appId, tokens[user], { userId: user, requestTimeout: 20000 });
    const errors = [];
    c.on('error', (e) => errors.push(e));
    // state is what an app would show: msgId → message, from the events only.
    const state = new Map();
    c.on('message', (m) => state.set(m.msgId, m));
    const log = []; // every event, to show how a message that did not converge got there
    c.on('message', (m) => log.push(`message ${JSON.stringify(m)}`));
    c.on('message-updated', (u) => log.push(`message-updated ${JSON.stringify(u)}`));
    c.on('message-updated', (u) => {
      // An update is the message's whole new state: it replaces the old one.
      if (!u.deleted && state.has(u.msgId)) state.set(u.msgId, u);
    });
    devices.push({ i, user, proxy, c, got: record(c), sends: [], changes: [], state, errors, log });
  }
  const chaos = { on: true };
  try {
    await Promise.all(devices.map((d) => d.c.connect()));
    const end = Date.now() + TRAFFIC_MS;

    // Each device's network fails now and then.
    const breaker = async (d) => {
      const r = prng(seed * 7 + d.i);
      while (Date.now() < end) {
        await sleep(r.int(100, 700));
        const roll = r();
        if (roll < 0.2) {
          stats.offline++;
          d.proxy.offline = true;
          d.proxy.cut('reset');
          await sleep(r.int(100, 600));
          d.proxy.offline = false;
        } else {
          stats.cuts++;
          d.proxy.cut(roll < 0.6 ? 'reset' : 'end');
        }
      }
    };
    // Each device sends to a peer or a group, a few sends in flight at once.
    const sender = async (d) => {
      const r = prng(seed * 13 + d.i);
      let n = 0;
      while (Date.now() < end) {
        await sleep(r.int(20, 120));
        if (d.sends.filter((s) => !s.done).length >= 3) continue;
        const groups = [...groupsNow].filter((g) => GROUPS[g].includes(d.user));
        const group = r() < 0.4 && groups.length > 0;
        const target = group ? r.pick(groups) : r.pick(USERS.filter((u) => u !== d.user));
        const text = `${d.user}/${d.i} #${++n} to ${target}`;
        const s = { target, text, done: false };
        s.p = d.c.sendText(target, text, { group }).then(
          (res) => { s.res = res; s.done = true; },
          (err) => { s.err = err; s.done = true; });
        d.sends.push(s);
        stats.sdkSends++;
      }
    };
    // Each device changes messages it has: edits and now and then recalls
    // its own, reacts to and unreacts from the others'.
    const changer = async (d) => {
      const r = prng(seed * 19 + d.i);
      let n = 0;
      while (Date.now() < end) {
        await sleep(r.int(30, 150));
        if (d.changes.filter((x) => !x.done).length >= 2 || !d.state.size) continue;
        const m = r.pick([...d.state.values()].slice(-30));
        if (m.recalled) continue;
        let what;
        if (m.senderUserId === d.user) {
          what = r() < 0.15 ? ['recall'] : ['edit', `${m.content.content.split(' (edit')[0]} (edit ${d.i}.${++n})`];
        } else {
          what = [r() < 0.6 ? 'react' : 'unreact', r.pick(['👍', '❤️', '😂'])];
        }
        const x = { what, msgId: m.msgId, done: false };
        x.p = d.c[what[0]](m.sid, m.msgId, ...what.slice(1)).then(
          (res) => { x.res = JSON.stringify(res); x.done = true; },
          (err) => { x.err = err; x.done = true; stats.changesFailed++; });
        d.changes.push(x);
        stats.changes++;
        stats.kinds[what[0]] = (stats.kinds[what[0]] || 0) + 1;
      }
    };
    // The app's backend sends for any user, into new conversations too.
    const backend = async () => {
      const r = prng(seed * 17);
      while (Date.now() < end) {
        await sleep(r.int(30, 150));
        if (!groupsNow.has('g3') && Date.now() > end - TRAFFIC_MS / 2) {
          assert.equal((await http(chatd.url, app, 'POST', '/group/create', { groupId: 'g3', name: 'g3', avatarUri: '', userIds: GROUPS.g3 })).status, 1);
          groupsNow.add('g3');
        }
        const from = r.pick(USERS);
        const groups = [...groupsNow].filter((g) => GROUPS[g].includes(from));
        const group = r() < 0.4;
        const target = group ? r.pick(groups) : r.pick(USERS.filter((u) => u !== from));
        const res = await http(chatd.url, app, 'POST', group ? '/group/send/message' : '/private/send/message',
          { senderUserId: from, targetId: target, messageType: 1, content: { content: `http ${from} to ${target}` } });
        assert.equal(res.status, 1, JSON.stringify(res));
        stats.httpSends++;
      }
    };
    await Promise.all([...devices.map(breaker), ...devices.map(sender), ...devices.map(changer), backend()]);

    // Calm: the network works again and every send resolves.
    chaos.on = false;
    for (const d of devices) d.proxy.offline = false;
    await Promise.all(devices.flatMap((d) => [...d.sends, ...d.changes].map((s) => s.p)));
    for (const d of devices) {
      // A change may fail only the way the rule allows: its message was
      // recalled meanwhile (by its sender, or the user's other device).
      for (const x of d.changes) {
        if (x.err) assert.match(String(x.err), /recalled/, `device ${d.i} ${x.what.join(' ')} ${x.msgId}`);
      }
    }
    for (const d of devices) {
      for (const s of d.sends) assert.ok(s.res, `send ${s.text} failed: ${s.err}`);
    }

    // A last message in every conversation is the barrier: once a client has
    // emitted it, it has emitted all before it or lost them.
    const truth = new Map(); // user → Map sid → [messages by seq]
    for (const u of USERS) truth.set(u, await history(app, u));
    const convs = new Map(); // one sender per conversation
    for (const [u, bySid] of truth) {
      for (const msgs of bySid.values()) {
        const m = msgs[0];
        const group = m.conversationType === 2;
        const key = group ? m.targetId : [m.senderUserId, m.targetId].sort().join(' ');
        if (!convs.has(key)) convs.set(key, { from: u, target: group ? m.targetId : (m.senderUserId === u ? m.targetId : m.senderUserId), group });
      }
    }
    for (const { from, target, group } of convs.values()) {
      const res = await http(chatd.url, app, 'POST', group ? '/group/send/message' : '/private/send/message',
        { senderUserId: from, targetId: target, messageType: 1, content: { content: 'the end' } });
      assert.equal(res.status, 1);
    }
    for (const u of USERS) truth.set(u, await history(app, u));

    for (const d of devices) {
      const want = truth.get(d.user);
      const lastIds = new Set([...want.values()].map((msgs) => msgs.at(-1).msgId));
      await until(() => { const ids = new Set(d.got.map((m) => m.msgId)); return [...lastIds].every((id) => ids.has(id)); },
        `device ${d.i} (${d.user}) to emit the last message of each conversation`, 10000);
      // The server's list now agrees with what was emitted: it starts no sync.
      const syncs = () => d.c.net.sent.filter((f) => f.includes('["sync",')).length;
      const before = syncs();
      await d.c.refreshConversations();
      assert.equal(syncs(), before, `device ${d.i} (${d.user}): the list shows nothing missed`);
      assert.deepEqual(d.errors.map(String), [], `device ${d.i} (${d.user}): no errors`);
      const emitted = new Map();
      for (const m of d.got) emitted.set(m.sid, [...(emitted.get(m.sid) || []), m]);
      assert.deepEqual([...emitted.keys()].sort(), [...want.keys()].sort(), `device ${d.i} (${d.user}): conversations`);
      for (const [sid, msgs] of want) {
        const got = emitted.get(sid);
        assert.deepEqual(got.map((m) => m.seq), msgs.map((m) => m.seq), `device ${d.i} (${d.user}) sid ${sid}: seqs emitted once, in order`);
        assert.deepEqual(got.map((m) => m.msgId), msgs.map((m) => m.msgId), `device ${d.i} (${d.user}) sid ${sid}: the stored messages`);
      }
      // Every message's final state equals history's for this user.
      const byId = new Map([...want.values()].flat().map((m) => [m.msgId, view(m)]));
      const mismatches = () => [...byId].filter(([id, w]) => !isDeepStrictEqual(view(d.state.get(id)), w));
      // Changes have no barrier message: wait until the states agree, then
      // show how each one that never did got where it is.
      await until(() => mismatches().length === 0, `device ${d.i} (${d.user}) to converge on message states`, 10000).catch(() => {});
      for (const [id] of mismatches()) {
        console.error(`device ${d.i} (${d.user}) message ${id}:\n  ` + d.log.filter((x) => x.includes(id)).join('\n  ') + '\n  own changes: ' +
          d.changes.filter((x) => x.msgId === id).map((x) => `${x.what.join(' ')} → ${x.err || x.res}`).join('\n  '));
      }
      for (const [id, w] of mismatches()) assert.deepEqual(view(d.state.get(id)), w, `device ${d.i} (${d.user}) message ${id}: final state`);
      // Every resolved send is stored once, under its clientMsgId.
      const mine = [...want.values()].flat().filter((m) => m.senderUserId === d.user && m.clientMsgId);
      for (const s of d.sends) {
        const stored = mine.filter((m) => m.clientMsgId === s.res.clientMsgId);
        assert.equal(stored.length, 1, `send ${s.text} stored once`);
        assert.equal(stored[0].msgId, s.res.msgId, `send ${s.text}: the ack names the stored message`);
        assert.equal(stored[0].content.content.split(' (edit')[0], stored[0].recalled ? '' : s.text);
      }
    }
    const stored = [...truth.get('u0').values()].reduce((n, msgs) => n + msgs.length, 0);
    t.diagnostic(`seed ${seed}: ${stats.sdkSends} SDK sends, ${stats.httpSends} HTTP sends, ` +
      `${stats.changes} changes (${Object.entries(stats.kinds).map(([k, n]) => `${n} ${k}`).join(', ')}; ${stats.changesFailed} refused), ${stats.cuts} cuts, ${stats.offline} offline spells, ` +
      `${devices.reduce((n, d) => n + d.proxy.accepted, 0)} connections, ${stored} messages in u0's conversations`);
  } finally {
    chaos.on = false;
    for (const d of devices) {
      d.c.close();
      await d.proxy.close();
    }
  }
}

// view is the part of a message's state that changes compare.
function view(m) {
  if (!m) return m;
  return {
    content: m.content, recalled: !!m.recalled, editedAt: m.editedAt || 0, editCount: m.editCount || 0,
    reactions: (m.reactions || []).map((r) => ({ emoji: r.emoji, count: r.count, me: !!r.me }))
      .sort((a, b) => (a.emoji < b.emoji ? -1 : a.emoji > b.emoji ? 1 : 0)),
  };
}

// history returns every message of every session of user, by sid in seq
// order, read over the signed HTTP API.
async function history(app, user) {
  const sessions = await http(chatd.url, app, 'GET', '/user/sessions', { userId: user });
  assert.equal(sessions.status, 1);
  const out = new Map();
  for (const s of sessions.data) {
    const msgs = [];
    for (let before; ;) {
      const q = { userId: user, targetId: s.targetId, conversationType: s.conversationType, limit: 100 };
      if (before) q.lastmsgId = before;
      const page = await http(chatd.url, app, 'GET', '/session/messages', q);
      assert.equal(page.status, 1);
      if (!page.data.length) break;
      msgs.unshift(...page.data.slice().reverse());
      before = page.data.at(-1).msgId;
    }
    assert.deepEqual(msgs.map((m) => m.seq), msgs.map((_, i) => i + 1), `stored seqs of ${user}'s ${s.sid} are gapless`);
    if (msgs.length) out.set(s.sid, msgs);
  }
  return out;
}
