// The demo's group panel in headless Chromium: members with roles, rename,
// notice, add, mute, remove, leave and dismiss by the owner, with the group
// events shown in every member's timeline. Screenshots go to
// test/browser/artifacts/.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChatd } from '../lib/chatd.mjs';
import { chromiumSkip, demoLogin, launchChromium } from '../lib/browser.mjs';

const artifacts = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const skip = chromiumSkip();

let chatd, browser;
const pages = {};

async function login(name) {
  const errors = [];
  const page = await demoLogin(browser, chatd.url, name, { viewport: { width: 1000, height: 760 }, onError: (e) => errors.push(e) });
  page.errors = errors;
  pages[name] = page;
  return page;
}

const notices = (page) => page.locator('#messages [data-testid=notice]').allTextContents();
const waitNotice = (page, text) => page.locator('#messages [data-testid=notice]', { hasText: text }).first().waitFor();
const role = (page, user) => page.locator(`[data-testid=member][data-user="${user}"]`).getAttribute('data-role');

async function openGroup(page, title) {
  await page.locator('[data-testid=conversation]', { hasText: '# ' + title }).first().click();
  await page.waitForFunction((t) => document.getElementById('chat-title').textContent === '# ' + t, title);
}

describe('demo group panel in Chromium', { skip }, () => {
  before(async () => {
    chatd = await startChatd({ env: { CHATD_DEMO: '1', CHATD_USER_SEND_RATE: '0' } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await chatd?.stop();
  });

  test('the owner manages the group and every member sees the events', async () => {
    const ann = await login('ann');
    const bob = await login('bob');
    const cat = await login('cat');
    await ann.click('#new-group-box summary');
    await ann.fill('[data-testid=new-group-name]', 'Book club');
    await ann.fill('[data-testid=new-group-members]', 'bob, cat');
    await ann.click('[data-testid=new-group-submit]');
    await ann.waitForFunction(() => document.getElementById('chat-title').textContent === '# Book club');
    await ann.fill('[data-testid=composer-text]', 'hello readers');
    await ann.click('[data-testid=composer-send]');
    for (const p of [bob, cat]) {
      await p.locator('[data-testid=conversation]', { hasText: '# Book club' }).locator('[data-testid=unread]').waitFor();
      await openGroup(p, 'Book club');
    }

    await ann.click('[data-testid=group-info-toggle]');
    await ann.locator('[data-testid=member][data-user=cat]').waitFor();
    assert.equal(await role(ann, 'ann'), 'owner');
    assert.equal(await role(ann, 'bob'), 'member');
    // A member sees the list but no management.
    await bob.click('[data-testid=group-info-toggle]');
    await bob.locator('[data-testid=member][data-user=ann]').waitFor();
    assert.equal(await bob.locator('[data-testid=group-rename]').isVisible(), false);
    assert.equal(await bob.locator('[data-testid=group-dismiss]').isVisible(), false);
    assert.equal(await bob.locator('[data-testid=member-remove]').count(), 0);

    await ann.fill('[data-testid=group-name]', 'Readers');
    await ann.click('[data-testid=group-rename]');
    await waitNotice(ann, 'The group was renamed');
    await ann.fill('[data-testid=group-notice]', 'Chapter 3 by Friday');
    await ann.click('[data-testid=group-notice-save]');
    await waitNotice(ann, 'Group notice: Chapter 3 by Friday');
    await ann.fill('[data-testid=group-add-name]', 'dan');
    await ann.click('[data-testid=group-add]');
    await ann.locator('[data-testid=member][data-user=dan]').waitFor();
    for (const p of [ann, bob, cat]) await waitNotice(p, 'dan joined the group');
    assert.deepEqual(await notices(bob), ['The group was renamed to \u201cReaders\u201d', 'Group notice: Chapter 3 by Friday', 'dan joined the group']);
    await bob.locator('[data-testid=conversation]', { hasText: '# Readers' }).waitFor();

    // Mute bob: his send is refused with a clear error.
    await ann.locator('[data-testid=member][data-user=bob] [data-testid=member-mute]').click();
    await waitNotice(bob, 'bob was muted until');
    await bob.fill('[data-testid=composer-text]', 'may I?');
    await bob.click('[data-testid=composer-send]');
    await bob.locator('#app-error', { hasText: 'you are muted in this group until' }).waitFor();
    await ann.screenshot({ path: join(mkdirSync(artifacts, { recursive: true }) || artifacts, 'groups-01-owner-panel.png'), fullPage: true });

    // Remove cat: her page says so and the composer goes.
    await ann.locator('[data-testid=member][data-user=cat] [data-testid=member-remove]').click();
    await waitNotice(bob, 'cat was removed from the group');
    // cat learns it from the group-event push (the notice may race her lost session).
    await cat.locator('#composer').waitFor({ state: 'hidden' });
    await cat.locator('[data-testid=conversation]', { hasText: '# Readers' }).waitFor({ state: 'detached' });

    // bob leaves; ann dismisses.
    await bob.click('[data-testid=group-leave]');
    await waitNotice(ann, 'bob left the group');
    await ann.click('[data-testid=group-dismiss]');
    // The notice and the group-event that ends ann's session travel apart:
    // either the notice shows, or the conversation leaves her list.
    await Promise.any([
      waitNotice(ann, 'The group was dismissed'),
      ann.locator('[data-testid=conversation]', { hasText: '# Readers' }).waitFor({ state: 'detached' }),
    ]);
    await ann.screenshot({ path: join(artifacts, 'groups-02-dismissed.png'), fullPage: true });
    assert.deepEqual([...ann.errors, ...bob.errors, ...cat.errors], []);
  });
});
