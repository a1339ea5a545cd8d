// The demo's presence, typing, read marks and conversation menu in headless
// Chromium: online dots, "typing…", ✓ then ✓✓ in 1:1, "read by N" with the
// readers in a group, and pin, mute and hide from the list's menu, synced
// to the user's second tab.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd } from '../lib/chatd.mjs';
import { chromiumSkip, demoLogin, launchChromium } from '../lib/browser.mjs';

const skip = chromiumSkip();
let chatd, browser;

async function login(name) {
  const errors = [];
  const page = await demoLogin(browser, chatd.url, name, { onError: (e) => errors.push(e) });
  page.errors = errors;
  return page;
}

const conv = (page, text) => page.locator('[data-testid=conversation]', { hasText: text }).first();
const titles = (page) => page.locator('[data-testid=conversation] .title').allTextContents();

async function open(page, text, title) {
  await conv(page, text).click();
  await page.waitForFunction((t) => document.getElementById('chat-title').textContent === t, title);
}

async function send(page, text) {
  await page.fill('[data-testid=composer-text]', text);
  await page.click('[data-testid=composer-send]');
  await page.locator('[data-testid=message]', { hasText: text }).first().waitFor();
}

describe('demo presence, receipts and conversation menu in Chromium', { skip }, () => {
  before(async () => {
    chatd = await startChatd({ env: { CHATD_DEMO: '1', CHATD_USER_SEND_RATE: '0', CHATD_PRESENCE_GRACE: '100ms' } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await chatd?.stop();
  });

  test('online dots, typing, seen marks, read by N and the menu', async () => {
    const ann = await login('ann');
    const bob = await login('bob');
    await ann.click('#new-chat-box summary');
    await ann.fill('[data-testid=new-chat-name]', 'bob');
    await ann.click('[data-testid=new-chat-submit]');
    await ann.waitForFunction(() => document.getElementById('chat-title').textContent === 'bob');
    await send(ann, 'hi bob');
    const tick = ann.locator('[data-testid=message]', { hasText: 'hi bob' }).locator('[data-testid=tick]');
    await ann.waitForFunction(() => document.querySelector('[data-testid=tick]')?.dataset.seen === 'false');
    // bob is online: a green dot in ann's list and header.
    await ann.locator('[data-testid=online-dot][data-online=true]').waitFor();
    await ann.locator('[data-testid=chat-online][data-online=true]').waitFor();

    // bob reads: ✓✓ for ann.
    await open(bob, 'ann', 'ann');
    await ann.waitForFunction(() => document.querySelector('[data-testid=tick]')?.dataset.seen === 'true');
    assert.equal(await tick.textContent(), '✓✓');

    // bob types: ann sees it.
    await bob.fill('[data-testid=composer-text]', 'typing a reply');
    await bob.locator('[data-testid=composer-text]').press('a');
    await ann.locator('[data-testid=typing]', { hasText: 'bob is typing…' }).waitFor();
    await send(bob, 'reply');
    await ann.waitForFunction(() => document.getElementById('typing').hidden);

    // A group: "read by N", then the readers.
    const cat = await login('cat');
    await ann.click('#new-group-box summary');
    await ann.fill('[data-testid=new-group-name]', 'Club');
    await ann.fill('[data-testid=new-group-members]', 'bob, cat');
    await ann.click('[data-testid=new-group-submit]');
    await ann.waitForFunction(() => document.getElementById('chat-title').textContent === '# Club');
    await send(ann, 'club news');
    const readBy = ann.locator('[data-testid=message]', { hasText: 'club news' }).locator('[data-testid=read-by]');
    await readBy.waitFor();
    assert.equal(await readBy.getAttribute('data-count'), '0');
    for (const p of [bob, cat]) {
      await conv(p, '# Club').locator('[data-testid=unread]').waitFor();
      await open(p, '# Club', '# Club');
    }
    await ann.waitForFunction(() => document.querySelector('[data-testid=read-by]')?.dataset.count === '2');
    await readBy.click();
    await ann.locator('[data-testid=readers]', { hasText: 'bob, cat' }).waitFor();

    // The menu: pin, mute and hide, synced to ann's second tab.
    const ann2 = await login('ann');
    await conv(ann2, 'bob').waitFor();
    await conv(ann, 'bob').locator('[data-testid=conv-menu]').click();
    await ann.click('[data-testid=conv-pin]');
    await conv(ann, 'bob').locator('[data-testid=pinned]').waitFor();
    await conv(ann2, 'bob').locator('[data-testid=pinned]').waitFor();
    assert.equal((await titles(ann2))[0], 'bob', 'pinned first on the other tab');
    await conv(ann2, 'bob').locator('[data-testid=conv-menu]').click();
    await ann2.click('[data-testid=conv-mute]');
    await conv(ann, 'bob').locator('[data-testid=muted]').waitFor();
    await conv(ann, 'bob').locator('[data-testid=conv-menu]').click();
    await ann.click('[data-testid=conv-hide]');
    await ann2.waitForFunction(() => ![...document.querySelectorAll('[data-testid=conversation] .title')].some((t) => t.textContent === 'bob'));
    assert.ok(!(await titles(ann)).includes('bob'), 'hidden here too');
    // The next message brings it back, still pinned and muted.
    await open(bob, 'ann', 'ann');
    await send(bob, 'are you there?');
    await conv(ann2, 'bob').locator('[data-testid=muted]').waitFor();
    assert.equal((await titles(ann2))[0], 'bob');

    // bob leaves: his dot turns grey.
    await bob.context().close();
    await ann.locator('[data-testid=online-dot][data-online=false]').waitFor();
    for (const p of [ann, ann2, cat]) assert.deepEqual(p.errors, []);
  });
});
