// The demo's message menu in headless Chromium: two users reply, edit,
// recall, react and mention; each sees the other's changes live and again
// after a reload.
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
const errors = [];

const login = (name) => demoLogin(browser, chatd.url, name, { onError: (e) => errors.push(e) });

const msg = (page, text) => page.locator('#messages [data-testid=message]').filter({ has: page.locator('.text', { hasText: text }) }).last();

async function send(page, text) {
  await page.fill('[data-testid=composer-text]', text);
  await page.click('[data-testid=composer-send]');
  await msg(page, text).waitFor();
}

async function openChat(page, target) {
  await page.locator(`[data-testid=conversation][data-target="${target}"]`).click();
}

async function reload(page) {
  await page.reload();
  await page.waitForSelector('#status[data-state=connected]');
}

async function shot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, name + '.png'), fullPage: true });
}

describe('demo message menu in Chromium', { skip }, () => {
  before(async () => {
    chatd = await startChatd({ env: { CHATD_DEMO: '1', CHATD_USER_SEND_RATE: '0' } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await chatd?.stop();
  });

  test('reply, edit, react, recall, mention: live and after a reload', async () => {
    const ann = await login('ann');
    const ben = await login('ben');
    await ann.click('#new-group-box summary');
    await ann.fill('[data-testid=new-group-name]', 'Book club');
    await ann.fill('[data-testid=new-group-members]', 'ben');
    await ann.click('[data-testid=new-group-submit]');
    await ann.waitForFunction(() => document.getElementById('chat-title').textContent === '# Book club');
    await send(ann, 'first chapter tonight');
    const group = (p) => p.locator('[data-testid=conversation]', { hasText: '# Book club' });
    await group(ben).click();
    await msg(ben, 'first chapter tonight').waitFor();

    // ben replies with a quote and mentions ann.
    await msg(ben, 'first chapter tonight').locator('[data-testid=action-reply]').click();
    await ben.locator('[data-testid=compose-banner]').waitFor();
    await send(ben, 'count me in @ann');
    await msg(ann, 'count me in').locator('[data-testid=quote]', { hasText: 'first chapter tonight' }).waitFor();

    // ann edits her message; ben sees the new text marked edited.
    await msg(ann, 'first chapter tonight').locator('[data-testid=action-edit]').click();
    await ann.fill('[data-testid=composer-text]', 'second chapter tonight');
    await ann.click('[data-testid=composer-send]');
    await msg(ben, 'second chapter tonight').locator('[data-testid=edited]').waitFor();

    // ann reacts to ben's reply; ben sees the count.
    await msg(ann, 'count me in').locator('[data-testid=action-react]').first().click();
    await msg(ben, 'count me in').locator('[data-testid=reaction]', { hasText: '👍 1' }).waitFor();
    await shot(ben, 'lifecycle-01-ben');

    // ann recalls her message: ben sees it recalled, and the quote too.
    await msg(ann, 'second chapter tonight').locator('[data-testid=action-recall]').click();
    await ben.locator('#messages [data-testid=recalled]').waitFor();
    await msg(ben, 'count me in').locator('[data-testid=quote]', { hasText: 'message recalled' }).waitFor();
    await shot(ben, 'lifecycle-02-ben-recalled');

    // After a reload both see the same final state.
    for (const p of [ann, ben]) {
      await reload(p);
      await group(p).click();
      await msg(p, 'count me in').locator('[data-testid=reaction]', { hasText: '👍 1' }).waitFor();
      await p.locator('#messages [data-testid=recalled]').waitFor();
      assert.equal(await p.locator('#messages .text', { hasText: 'chapter tonight' }).count(), 0, 'recalled content is gone');
      await msg(p, 'count me in').locator('[data-testid=quote]', { hasText: 'message recalled' }).waitFor();
    }

    // A mention of ben shows [@me] in his list until he opens the group.
    await reload(ben); // nothing open: the list only
    await ann.fill('[data-testid=composer-text]', '');
    await ann.type('[data-testid=composer-text]', 'see you @b');
    await ann.click('[data-testid=mention-option][data-name=ben]');
    assert.equal(await ann.inputValue('[data-testid=composer-text]'), 'see you @ben ');
    await ann.click('[data-testid=composer-send]');
    await msg(ann, 'see you @ben').waitFor();
    await group(ben).locator('[data-testid=at-me]').waitFor();
    await shot(ben, 'lifecycle-03-ben-at-me');
    await group(ben).click();
    await group(ben).locator('[data-testid=at-me]').waitFor({ state: 'detached' });

    // ben deletes ann's last message for himself only.
    await msg(ben, 'see you').locator('[data-testid=action-delete]').click();
    await msg(ben, 'see you').waitFor({ state: 'detached' });
    await reload(ben);
    await group(ben).click();
    await msg(ben, 'count me in').waitFor();
    assert.equal(await ben.locator('#messages .text', { hasText: 'see you' }).count(), 0);
    assert.equal(await ann.locator('#messages .text', { hasText: 'see you' }).count(), 1);
    assert.deepEqual(errors, []);
  });

  test('@all is offered to the owner and admins only', async () => {
    const [dee, eve, fay] = [await login('dee'), await login('eve'), await login('fay')];
    await dee.click('#new-group-box summary');
    await dee.fill('[data-testid=new-group-name]', 'Choir');
    await dee.fill('[data-testid=new-group-members]', 'eve, fay');
    await dee.click('[data-testid=new-group-submit]');
    await dee.waitForFunction(() => document.getElementById('chat-title').textContent === '# Choir');
    await send(dee, 'rehearsal at six');
    const group = (p) => p.locator('[data-testid=conversation]', { hasText: '# Choir' });
    // options: the names offered after typing "@" once the demo knows the user's role.
    const options = async (p, role) => {
      await p.locator(`#composer[data-group-role=${role}]`).waitFor({ state: 'attached' });
      await p.fill('[data-testid=composer-text]', '');
      await p.type('[data-testid=composer-text]', '@');
      await p.locator('[data-testid=mention-option]').first().waitFor();
      const names = await p.locator('[data-testid=mention-option]').evaluateAll((bs) => bs.map((b) => b.dataset.name));
      await p.fill('[data-testid=composer-text]', '');
      return names.sort();
    };
    for (const p of [eve, fay]) {
      await group(p).click();
      await msg(p, 'rehearsal at six').waitFor();
    }
    assert.deepEqual(await options(eve, 'member'), ['dee'], 'a member is not offered @all');
    assert.deepEqual(await options(dee, 'owner'), ['all'], 'the owner is');

    // dee makes eve an admin; eve's open group learns it from the event.
    await dee.click('[data-testid=group-info-toggle]');
    await dee.locator('[data-testid=member][data-user=eve] [data-testid=member-admin]').click();
    await dee.locator('[data-testid=member][data-user=eve][data-role=admin]').waitFor();
    assert.deepEqual(await options(eve, 'admin'), ['all', 'dee'], 'an admin is offered @all');
    assert.deepEqual(await options(fay, 'member'), ['dee'], 'the other member still is not');

    // The admin's @all mentions everyone: fay, with no chat open, sees [@me].
    await reload(fay);
    await send(eve, 'all welcome @all');
    await group(fay).locator('[data-testid=at-me]').waitFor();
    assert.deepEqual(errors, []);
  });
});
