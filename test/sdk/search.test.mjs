// The SDK's search(): hits with highlights, a conversation filter and paging.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, createApp, call as http } from '../lib/chatd.mjs';
import { tokenFor, client } from './helpers.mjs';

let chatd, app, c;
before(async () => {
  chatd = await startChatd();
  app = await createApp(chatd.url, 'sdk search');
  const token = await tokenFor(chatd.url, app, 'ann');
  await tokenFor(chatd.url, app, 'ben');
  assert.equal((await http(chatd.url, app, 'POST', '/group/create', { groupId: 'crew', name: 'Crew', avatarUri: '', userIds: ['ann', 'ben'] })).status, 1);
  for (const text of ['明天北京见', 'see you in Zürich', '北京 again']) {
    const r = await http(chatd.url, app, 'POST', '/group/send/message', { senderUserId: 'ben', targetId: 'crew', messageType: 1, content: { content: text } });
    assert.equal(r.status, 1, JSON.stringify(r));
  }
  c = client(chatd.url, app.appId, token, { userId: 'ann' });
  await c.connect();
});
after(async () => { c?.close(); await chatd?.stop(); });

test('search() finds, highlights and pages', async () => {
  const first = await c.search('北京', { limit: 1 });
  assert.equal(first.hits.length, 1);
  const [h] = first.hits;
  assert.equal(h.content.content, '北京 again');
  assert.equal(h.snippet.slice(...h.highlights[0]), '北京');
  const rest = await c.search('北京', { sid: h.sid, before: first.next });
  assert.deepEqual(rest.hits.map((x) => x.content.content), ['明天北京见']);
  assert.equal((await c.search('zurich')).hits[0].content.content, 'see you in Zürich');
  await assert.rejects(c.search(''), /missing q/);
});
