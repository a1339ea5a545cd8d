// Message updates through the SDK: two devices of one user, one of them
// offline while others edit, recall, react and delete, converge to exactly
// what a fresh history shows; applying an update twice changes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call as http } from '../lib/chatd.mjs';
import { tokenFor, client, until } from './helpers.mjs';

let chatd, app;
const tokens = {};
const open = [];
before(async () => {
  chatd = await startChatd({ env: { CHATD_USER_SEND_RATE: '0' } });
  app = await createApp(chatd.url, 'sdk lifecycle');
  for (const u of ['ann', 'ben', 'cat']) tokens[u] = await tokenFor(chatd.url, app, u);
  const g = await http(chatd.url, app, 'POST', '/group/create', { groupId: 'crew', name: 'Crew', avatarUri: '', userIds: ['ann', 'ben', 'cat'] });
  assert.equal(g.status, 1);
});
after(async () => {
  for (const c of open) c.close();
  await chatd?.stop();
});

async function dial(user) {
  const c = client(chatd.url, app.appId, tokens[user], { userId: user });
  open.push(c);
  await c.connect();
  return c;
}

// Model is what an app built on the SDK shows of one conversation: the
// messages by msgId, fed by message and message-updated events.
class Model {
  constructor(c, sid) {
    this.c = c;
    this.sid = sid;
    this.msgs = new Map();
    this.updates = 0;
    c.on('message', (m) => { if (m.sid === sid && !this.hidden(m.seq)) this.msgs.set(m.msgId, m); });
    c.on('message-updated', (u) => {
      if (u.sid !== sid) return;
      this.updates++;
      if (u.deleted) {
        for (const [id, m] of this.msgs) if (m.seq >= u.fromSeq && m.seq <= u.toSeq) this.msgs.delete(id);
        (this.ranges ||= []).push([u.fromSeq, u.toSeq]);
      } else if (this.msgs.has(u.msgId)) {
        this.msgs.set(u.msgId, { ...u });
      }
    });
  }

  hidden(seq) { return (this.ranges || []).some(([a, b]) => seq >= a && seq <= b); }

  async load() {
    for (const m of await this.c.history(this.sid, { limit: 100 })) this.msgs.set(m.msgId, m);
  }

  view() {
    return [...this.msgs.values()].sort((a, b) => a.seq - b.seq).map(shape);
  }
}

// shape keeps what a user sees of a message.
function shape(m) {
  return {
    msgId: m.msgId, seq: m.seq, content: m.content, recalled: !!m.recalled, editCount: m.editCount || 0,
    version: m.version || 0, reactions: (m.reactions || []).map((r) => `${r.emoji}:${r.count}:${r.me}`),
  };
}

test('a device that was offline during changes converges to a fresh history', async () => {
  const ann = await dial('ann');
  const cat = await dial('cat');
  const ben1 = await dial('ben');
  const ben2 = await dial('ben');
  const sid = (c) => c.conversations().find((s) => s.targetId === 'crew').sid;
  const m1 = new Model(ben1, sid(ben1));
  const m2 = new Model(ben2, sid(ben2));
  await m1.load();
  await m2.load();

  const sent = [];
  for (let i = 0; i < 5; i++) sent.push(await ann.sendText('crew', 'm' + i, { group: true }));
  await until(() => m2.msgs.size === 5 && m1.msgs.size === 5, 'both devices got the messages');

  // ben2 goes offline; the others change things.
  ben2.net.offline = true;
  ben2.net.cut();
  await until(() => ben2.state === 'reconnecting', 'ben2 offline');
  const annSid = sid(ann), catSid = sid(cat), benSid = sid(ben1);
  await ann.edit(annSid, sent[0].msgId, 'm0 edited');
  await ann.recall(annSid, sent[1].msgId);
  await cat.react(catSid, sent[2].msgId, '👍');
  await ben1.react(benSid, sent[2].msgId, '👍');
  await ben1.react(benSid, sent[4].msgId, '🎉');
  await ben1.deleteForMe(benSid, sent[3].msgId);
  await ann.edit(annSid, sent[0].msgId, 'm0 edited twice');
  await cat.unreact(catSid, sent[2].msgId, '👍');
  // A reply to a message that is then recalled quotes it as recalled.
  const reply = await cat.reply({ ...sent[4], sid: catSid }, 'nice', {});
  assert.equal(reply.quote.excerpt, 'm4');

  const fresh = async () => {
    const f = new Model(ben1, benSid);
    await f.load();
    return f.view();
  };
  await until(() => m1.msgs.get(sent[0].msgId)?.editCount === 2 && m1.msgs.size === 5, 'ben1 saw the changes live');
  assert.deepEqual(m1.view(), await fresh(), 'the online device matches history');

  ben2.net.offline = false;
  await until(() => ben2.state === 'connected', 'ben2 back');
  const want = await fresh();
  await until(() => JSON.stringify(m2.view()) === JSON.stringify(want), 'ben2 converges');
  assert.deepEqual(m2.view(), want);
  const r = want.find((m) => m.msgId === sent[2].msgId);
  assert.deepEqual(r.reactions, ['👍:1:true'], 'ben sees his own reaction as his');
  assert.ok(!want.some((m) => m.msgId === sent[3].msgId), 'the deleted message is gone for ben');
  assert.equal(want.find((m) => m.msgId === sent[1].msgId).recalled, true);

  // The same update again (as after an overlap of push and sync) changes nothing.
  const before = m2.updates;
  const ch = await ben2.request('sync-changes', { sid: benSid, afterVersion: 0 });
  for (const m of ch.messages) ben2._applyUpdate(benSid, m, false);
  assert.equal(m2.updates, before, 'known states are not emitted again');

  // Cat's conversation still has the deleted message; her device sees the
  // recalled quote after a recall of the replied message.
  await ann.recall(annSid, sent[4].msgId);
  const catHist = await cat.history(catSid, { limit: 100 });
  assert.ok(catHist.some((m) => m.msgId === sent[3].msgId));
  assert.equal(catHist.find((m) => m.msgId === reply.msgId).quote.recalled, true);
});
