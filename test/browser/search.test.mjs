// The demo's search box in headless Chromium: highlighted hits, Latin words
// by prefix (not inside other words), Chinese by substring, a clear error
// for a too-short query, and a click that opens the conversation at the hit
// (aroundSeq) rather than at its newest page.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChatd } from '../lib/chatd.mjs';
import { connect, call as emit } from '../lib/clients.mjs';
import { chromiumSkip, demoLogin, launchChromium } from '../lib/browser.mjs';

const artifacts = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const skip = chromiumSkip();

let chatd, browser;
const errors = [];

async function demoToken(userId) {
  const res = await fetch(chatd.url + '/demo/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId }) });
  const out = await res.json();
  assert.equal(out.status, 1, JSON.stringify(out));
  return out.data;
}

describe('demo search in Chromium', { skip }, () => {
  before(async () => {
    chatd = await startChatd({ env: { CHATD_DEMO: '1', CHATD_USER_SEND_RATE: '0' } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await chatd?.stop();
  });

  test('search, highlight, open at the hit', async () => {
    await demoToken('ben');
    const ann = await demoToken('ann');
    const sock = await connect(chatd.url, { version: 4, appId: ann.appId, token: ann.token });
    try {
      for (let i = 1; i <= 60; i++) {
        const text = i === 5 ? 'Our working trip to 北京 and Zürich' : i === 6 ? 'homework for later' : `filler ${i}`;
        const r = await emit(sock, 'send-private-message', { targetId: 'ben', messageType: 1, content: { content: text } });
        assert.equal(r.err, null, JSON.stringify(r.err));
      }
    } finally { sock.close(); }

    const page = await demoLogin(browser, chatd.url, 'ben', { onError: (e) => errors.push(e) });
    const search = async (q) => {
      await page.fill('[data-testid=search-input]', q);
      await page.click('[data-testid=search-submit]');
      await page.locator('#search-results [data-testid^=search-]').first().waitFor();
    };
    const hits = page.locator('[data-testid=search-hit]');

    await search('work 北京');
    assert.equal(await hits.count(), 1);
    assert.deepEqual(await hits.first().locator('mark').allTextContents(), ['work', '北京']);

    await search('WORK'); // a word's prefix: "working", not "homework"
    assert.equal(await hits.count(), 1);
    assert.match(await hits.first().textContent(), /working trip/);

    await search('zurich'); // diacritics folded
    assert.deepEqual(await hits.first().locator('mark').allTextContents(), ['Zürich']);

    await search('x');
    assert.match(await page.locator('[data-testid=search-error]').textContent(), /too short/);

    // Open the hit: the conversation shows the page around seq 5, marked.
    await search('trip');
    await hits.first().click();
    const hit = page.locator('#messages [data-seq="5"].hit');
    await hit.waitFor();
    assert.match(await hit.textContent(), /working trip/);
    assert.ok(await hit.isVisible());
    assert.equal(await page.locator('#messages [data-seq="60"]').count(), 0, 'the newest page was loaded instead');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'search-01-hit.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });
});
