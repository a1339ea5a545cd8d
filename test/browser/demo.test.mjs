// The demo chat (web/) in headless Chromium against a real chatd started with
// -demo: messages both ways, unread badges, image upload, a group of three,
// history paging, recovery after a server restart, escaping of user content,
// and a phone-sized screen. Screenshots go to test/browser/artifacts/.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WS from 'ws';
import { startChatd } from '../lib/chatd.mjs';
import { ChatdClient } from '../../sdk/js/chatd.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const artifacts = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') {
  throw new Error(`Chromium is required under CI: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}
const skip = haveChromium ? false : `Chromium not found at ${CHROMIUM} (apt-get install -y chromium); skipping the browser tests`;

const env = { CHATD_DEMO: '1', CHATD_USER_SEND_RATE: '0' };
let chatd, browser, dataDir;
const pages = {};
const nodeClients = [];

async function shot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, name + '.png'), fullPage: true });
}

// login opens the demo as user name in a fresh browser context.
async function login(name, viewport = { width: 1000, height: 700 }) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(err));
  page.on('dialog', (d) => { page.errors.push(new Error('dialog: ' + d.message())); d.dismiss(); });
  await page.goto(chatd.url + '/');
  await page.fill('[data-testid=login-name]', name);
  await page.click('[data-testid=login-submit]');
  await page.waitForSelector('#status[data-state=connected]');
  pages[name] = page;
  return page;
}

const conv = (page, target) => page.locator(`[data-testid=conversation][data-target="${target}"]`);
const badge = (page, target) => conv(page, target).locator('[data-testid=unread]');
const texts = (page) => page.locator('#messages [data-testid=message] .text').allTextContents();

async function startChat(page, name) {
  await page.click('#new-chat-box summary');
  await page.fill('[data-testid=new-chat-name]', name);
  await page.click('[data-testid=new-chat-submit]');
  await page.waitForFunction((n) => document.getElementById('chat-title').textContent === n, name);
}

async function send(page, text) {
  await page.fill('[data-testid=composer-text]', text);
  await page.click('[data-testid=composer-send]');
  await page.locator('#messages [data-testid=message] .text', { hasText: text }).last().waitFor();
}

async function waitText(page, text) {
  await page.locator('#messages [data-testid=message] .text').filter({ hasText: text }).first().waitFor();
}

// nodeUser connects with the SDK from Node as a demo user, to write history.
async function nodeUser(name) {
  const res = await fetch(chatd.url + '/demo/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: name }) });
  const { data } = await res.json();
  const c = new ChatdClient({ url: chatd.url, appId: data.appId, token: data.token, userId: name, WebSocket: WS, minReconnectDelay: 100, maxReconnectDelay: 500 });
  nodeClients.push(c);
  await c.connect();
  return c;
}

describe('demo chat in Chromium', { skip }, () => {
  before(async () => {
    const { chromium } = await import('playwright-core');
    dataDir = mkdtempSync(join(tmpdir(), 'chatd-browser-'));
    chatd = await startChatd({ dataDir, env });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    for (const c of nodeClients) c.close();
    await browser?.close();
    await chatd?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('two users exchange messages both ways; unread badges rise and clear', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    await startChat(alice, 'bob');
    await send(alice, 'hi bob');
    await badge(bob, 'alice').waitFor();
    assert.equal(await badge(bob, 'alice').textContent(), '1');
    await send(alice, 'are you there?');
    await bob.waitForFunction(() => document.querySelector('[data-testid=conversation][data-target="alice"] [data-testid=unread]')?.textContent === '2');
    assert.match(await conv(bob, 'alice').locator('.preview').textContent(), /are you there\?/);
    await shot(bob, '01-bob-unread');

    await conv(bob, 'alice').click();
    await waitText(bob, 'are you there?');
    assert.deepEqual(await texts(bob), ['hi bob', 'are you there?']);
    await badge(bob, 'alice').waitFor({ state: 'detached' });

    await send(bob, 'hi alice');
    await waitText(alice, 'hi alice');
    assert.deepEqual(await texts(alice), ['hi bob', 'are you there?', 'hi alice']);
    // alice is looking at the conversation: nothing stays unread.
    await alice.waitForFunction(() => !document.querySelector('[data-testid=conversation][data-target="bob"] [data-testid=unread]'));
    await shot(alice, '02-alice-chat');
    assert.deepEqual([...alice.errors, ...bob.errors], []);
  });

  test('an uploaded image appears in both pages', async () => {
    const { alice, bob } = pages;
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGklEQVR42mP8z8AARAwMDAxMDAwMTAxEAgAMhQEJ0wQgYgAAAABJRU5ErkJggg==', 'base64');
    await alice.setInputFiles('[data-testid=image-input]', { name: 'square.png', mimeType: 'image/png', buffer: png });
    for (const p of [alice, bob]) {
      const img = p.locator('#messages img.msg-image').last();
      await img.waitFor();
      await p.waitForFunction(() => { const i = [...document.querySelectorAll('#messages img.msg-image')].pop(); return i && i.complete && i.naturalWidth > 0; });
      assert.match(await img.getAttribute('src'), /\/files\//);
    }
    await shot(bob, '03-bob-image');
  });

  test('a group of three', async () => {
    const { alice, bob } = pages;
    const carol = await login('carol');
    await alice.click('#new-group-box summary');
    await alice.fill('[data-testid=new-group-name]', 'Tea club');
    await alice.fill('[data-testid=new-group-members]', 'bob, carol');
    await alice.click('[data-testid=new-group-submit]');
    await alice.waitForFunction(() => document.getElementById('chat-title').textContent === '# Tea club');
    await send(alice, 'welcome to tea club');
    const groupItem = (p) => p.locator('[data-testid=conversation]', { hasText: '# Tea club' });
    for (const p of [bob, carol]) {
      await groupItem(p).locator('[data-testid=unread]').waitFor();
      await groupItem(p).click();
      await waitText(p, 'welcome to tea club');
    }
    await send(carol, 'earl grey please');
    await waitText(alice, 'earl grey please');
    await waitText(bob, 'earl grey please');
    for (const p of [alice, bob, carol]) assert.deepEqual(await texts(p), ['welcome to tea club', 'earl grey please']);
    // Others' group messages are labelled with the sender.
    assert.equal(await bob.locator('#messages [data-testid=message]').last().locator('.who').textContent(), 'carol');
    await shot(carol, '04-carol-group');
    assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors], []);
  });

  test('scrolling up pages older history in order', async () => {
    const dave = await nodeUser('dave');
    for (let i = 1; i <= 45; i++) await dave.sendText('alice', `old ${i}`);
    const { alice } = pages;
    await conv(alice, 'dave').click();
    await waitText(alice, 'old 45');
    const first = await texts(alice);
    assert.ok(first.length < 45, `first page holds ${first.length}`);
    for (let i = 0; i < 20 && (await texts(alice)).length < 45; i++) {
      await alice.evaluate(() => { document.getElementById('messages').scrollTop = 0; });
      await alice.waitForTimeout(150);
    }
    await alice.locator('#messages .older').waitFor();
    assert.deepEqual(await texts(alice), Array.from({ length: 45 }, (_, i) => `old ${i + 1}`));
    await shot(alice, '05-alice-history');
  });

  test('a server restart on the same data dir and port loses and duplicates nothing', async () => {
    const { alice, bob } = pages;
    await conv(alice, 'bob').click();
    await waitText(alice, 'hi alice');
    await conv(bob, 'alice').click();
    await waitText(bob, 'hi alice');
    const before = await texts(bob);

    await chatd.stop();
    await alice.waitForSelector('#status[data-state=reconnecting]');
    await bob.waitForSelector('#status[data-state=reconnecting]');
    // Typed while the server is down: shown as pending, sent after reconnecting.
    await alice.fill('[data-testid=composer-text]', 'sent while offline');
    await alice.click('[data-testid=composer-send]');
    await alice.locator('[data-testid=pending]').waitFor();
    await shot(alice, '06-alice-offline');

    chatd = await startChatd({ dataDir, env, port: chatd.port });
    // Sent from elsewhere right after the restart: bob gets it by push or by sync.
    const eve = await nodeUser('eve');
    await eve.sendText('bob', 'from eve after restart');
    await alice.waitForSelector('#status[data-state=connected]', { timeout: 30000 });
    await bob.waitForSelector('#status[data-state=connected]', { timeout: 30000 });
    await waitText(bob, 'sent while offline');
    await alice.locator('[data-testid=pending]').waitFor({ state: 'detached' });
    await badge(bob, 'eve').waitFor();
    await send(alice, 'after restart');
    await waitText(bob, 'after restart');

    const after = await texts(bob);
    assert.deepEqual(after, [...before, 'sent while offline', 'after restart']);
    const ids = await bob.locator('#messages [data-testid=message]').evaluateAll((els) => els.map((e) => e.dataset.msgId));
    assert.equal(new Set(ids).size, ids.length, 'no duplicate messages');
    assert.deepEqual(await texts(alice), after);
    await conv(bob, 'eve').click();
    await waitText(bob, 'from eve after restart');
    assert.deepEqual(await texts(bob), ['from eve after restart']);
    await shot(bob, '07-bob-after-restart');
  });

  test('markup in messages and names is shown as text and runs nothing', async () => {
    const { alice, bob } = pages;
    const evil = [
      '<img src=x onerror="window.__pwned=1;document.title=\'pwned\'">',
      '<script>window.__pwned=2</script><b>bold?</b>',
      '"><svg onload=window.__pwned=3>',
    ];
    await conv(alice, 'bob').click();
    await conv(bob, 'alice').click();
    for (const e of evil) await send(alice, e);
    for (const e of evil) await waitText(bob, e.slice(0, 12));
    for (const p of [alice, bob]) {
      const shown = await texts(p);
      assert.deepEqual(shown.slice(-3), evil);
      const probe = await p.evaluate(() => ({
        pwned: window.__pwned,
        title: document.title,
        imgs: [...document.querySelectorAll('#messages img')].filter((i) => !i.classList.contains('msg-image')).length,
        scripts: document.querySelectorAll('#messages script, #conversations script').length,
        svgs: document.querySelectorAll('#messages svg, #conversations svg').length,
        bolds: document.querySelectorAll('#messages b, #conversations b').length,
      }));
      assert.deepEqual(probe, { pwned: undefined, title: 'chatd demo', imgs: 0, scripts: 0, svgs: 0, bolds: 0 });
    }
    // A group name and a user name with markup too.
    const mal = await login('<i>mal</i>');
    await mal.click('#new-group-box summary');
    await mal.fill('[data-testid=new-group-name]', '<img src=y onerror=window.__pwned=4>');
    await mal.fill('[data-testid=new-group-members]', 'bob');
    await mal.click('[data-testid=new-group-submit]');
    await send(mal, 'hello from mal');
    const item = bob.locator('[data-testid=conversation]', { hasText: '# <img src=y' });
    await item.waitFor();
    await item.click();
    await waitText(bob, 'hello from mal');
    assert.equal(await bob.locator('#messages [data-testid=message] .who').last().textContent(), '<i>mal</i>');
    assert.equal(await mal.locator('#me-name').textContent(), '<i>mal</i>');
    for (const p of [bob, mal]) {
      assert.equal(await p.evaluate(() => window.__pwned), undefined);
      assert.equal(await p.locator('#conversations img, #conversations i, #me-name i').count(), 0);
    }
    await shot(bob, '08-bob-xss-as-text');
    assert.deepEqual([...alice.errors, ...bob.errors, ...mal.errors], []);
  });

  test('a phone-sized screen shows the list, then the chat, then the list again', async () => {
    const phone = await login('bob', { width: 375, height: 667 });
    assert.ok(await phone.locator('#sidebar').isVisible());
    assert.ok(!(await phone.locator('#chat').isVisible()));
    await shot(phone, '09-phone-list');
    await conv(phone, 'alice').click();
    await waitText(phone, 'hi bob');
    assert.ok(!(await phone.locator('#sidebar').isVisible()));
    await shot(phone, '10-phone-chat');
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `no horizontal scrolling (scrollWidth ${width})`);
    await phone.click('#back');
    assert.ok(await phone.locator('#sidebar').isVisible());
  });
});
