// Cross-origin use in headless Chromium: a page served from another origin (a
// second HTTP server on another port) uploads a file with progress (which
// forces a CORS preflight), by XHR and with axios as node-chat's SDK does,
// downloads it, and opens Socket.IO connections over long-polling, with
// node-chat's socket.io-client 2 and with v4. With
// CHATD_ALLOWED_ORIGINS set, a page from an origin not on the list gets
// nothing: no upload (the preflight is refused, so nothing is stored) and no
// socket.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startChatd, createApp, call } from '../lib/chatd.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') {
  throw new Error(`Chromium is required under CI: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}
const skip = haveChromium ? false : `Chromium not found at ${CHROMIUM} (apt-get install -y chromium); skipping the browser tests`;

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'));
const scripts = {
  '/sio2.js': readFileSync(require.resolve('socket.io-client-v2/dist/socket.io.js')),
  '/sio4.js': readFileSync(join(dirname(require.resolve('socket.io-client')), '..', '..', 'dist', 'socket.io.min.js')),
  '/axios.js': readFileSync(join(dirname(require.resolve('axios/package.json')), 'dist', 'axios.min.js')),
};

// pageServer serves an empty page and the two socket.io clients on its own
// port: a separate origin from chatd's.
function pageServer() {
  return new Promise((resolve) => {
    const srv = createServer((req, res) => {
      const js = scripts[req.url];
      if (js) {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(js);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>app</title><script src="/sio2.js"></script><script>window.io2 = io</script><script src="/sio4.js"></script><script src="/axios.js"></script>');
    });
    srv.listen(0, '127.0.0.1', () => resolve({ srv, origin: `http://127.0.0.1:${srv.address().port}` }));
  });
}

// filesIn counts the files stored under chatd's data directory.
function filesIn(dir) {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
}

// inPage runs, in the page, an upload with progress, a download of what was
// uploaded, and a polling socket per client version, and reports each.
async function inPage(page, chatdURL, appId, token) {
  return page.evaluate(async ({ chatdURL, appId, token }) => {
    const out = {};
    const png = Uint8Array.from(atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='), (c) => c.charCodeAt(0));
    const big = new Uint8Array(256 << 10); // room for several progress events
    big.set(png);
    out.upload = await new Promise((resolve) => {
      const fd = new FormData();
      fd.append('up_file', new Blob([big], { type: 'image/png' }), 'dot.png');
      const xhr = new XMLHttpRequest();
      const progress = [];
      xhr.upload.onprogress = (e) => progress.push([e.loaded, e.total]);
      xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText, progress });
      xhr.onerror = () => resolve({ status: 0, error: 'network error', progress });
      xhr.open('POST', `${chatdURL}/file/upload?token=${encodeURIComponent(token)}&appId=${appId}`);
      xhr.send(fd);
    });
    // node-chat's SDK way: axios, multipart up_file, onUploadProgress.
    const progress = [];
    const fd = new FormData();
    fd.append('up_file', new Blob([big], { type: 'image/png' }), 'dot.png');
    out.axios = await window.axios.post(`${chatdURL}/file/upload`, fd, {
      params: { token, appId },
      headers: { 'Content-Type': 'multipart/form-data' },
      onUploadProgress: (e) => progress.push([e.loaded, e.total]),
    }).then((res) => ({ status: res.status, ok: res.data.status, progress }), (err) => ({ status: 0, error: err.message, progress }));
    if (out.upload.status === 200) {
      const url = JSON.parse(out.upload.body).data.fullUrl;
      try {
        const res = await fetch(url, { mode: 'cors' });
        out.download = { status: res.status, size: (await res.arrayBuffer()).byteLength };
      } catch (err) { out.download = { error: String(err) }; }
    }
    try {
      const res = await fetch(`${chatdURL}/healthz`, { mode: 'cors' });
      out.api = { status: res.status, body: await res.json() };
    } catch (err) { out.api = { error: String(err) }; }

    const socket = (make) => new Promise((resolve) => {
      const s = make();
      const done = (r) => { clearTimeout(timer); s.close(); resolve(r); };
      const timer = setTimeout(() => done({ error: 'timeout' }), 5000);
      s.on('connect', () => s.emit('session-list', (err, list) => done({ err, sessions: Array.isArray(list) ? list.length : null, transport: s.io.engine.transport.name })));
      s.on('connect_error', (e) => done({ error: 'connect_error: ' + (e && e.message || e) }));
      s.on('error', (e) => done({ error: 'error: ' + (e && e.message || e) }));
    });
    // node-chat's SDK way: socket.io-client 2, token and appId in the query.
    out.sio2 = await socket(() => window.io2(chatdURL, { query: { token, appId }, transports: ['polling'], reconnection: false, forceNew: true }));
    out.sio4 = await socket(() => window.io(chatdURL, { auth: { token, appId }, transports: ['polling'], reconnection: false, forceNew: true, withCredentials: true }));
    return out;
  }, { chatdURL, appId, token });
}

describe('cross-origin browser apps (CORS) in Chromium', { skip }, () => {
  let browser, allowedPage, otherPage;
  const nodes = [];
  before(async () => {
    const { chromium } = await import('playwright-core');
    [allowedPage, otherPage] = [await pageServer(), await pageServer()];
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    for (const n of nodes) await n.stop();
    allowedPage?.srv.close();
    otherPage?.srv.close();
  });

  // open starts a chatd with allowedOrigins, a user, and a page of origin.
  async function setup(allowedOrigins) {
    const chatd = await startChatd({ env: { CHATD_ALLOWED_ORIGINS: allowedOrigins } });
    nodes.push(chatd);
    const app = await createApp(chatd.url, 'cors');
    const token = (await call(chatd.url, app, 'POST', '/user/getToken', { userId: 'web', name: 'Web', avatarUri: '' })).data.token;
    return { chatd, app, token };
  }

  async function visit(origin, { chatd, app, token }) {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(origin + '/');
      const before = filesIn(join(chatd.dataDir, 'files'));
      const out = await inPage(page, chatd.url, app.appId, token);
      out.stored = filesIn(join(chatd.dataDir, 'files')) - before;
      return out;
    } finally { await ctx.close(); }
  }

  function assertWorks(out) {
    assert.equal(out.upload.status, 200, JSON.stringify(out.upload));
    const up = JSON.parse(out.upload.body);
    assert.equal(up.status, 1);
    assert.ok(up.data.fid && up.data.fullUrl);
    assert.ok(out.upload.progress.length >= 1, 'upload progress events');
    const [loaded, total] = out.upload.progress.at(-1);
    assert.ok(total > 256 << 10 && loaded === total, `last progress ${loaded}/${total}`);
    assert.equal(out.axios.status, 200, JSON.stringify(out.axios));
    assert.equal(out.axios.ok, 1);
    assert.ok(out.axios.progress.length >= 1 && out.axios.progress.at(-1)[0] > 256 << 10, JSON.stringify(out.axios.progress));
    assert.equal(out.stored, 2);
    assert.deepEqual(out.download, { status: 200, size: 256 << 10 });
    assert.equal(out.api.status, 200);
    for (const v of ['sio2', 'sio4']) {
      assert.deepEqual(out[v], { err: null, sessions: 0, transport: 'polling' }, v);
    }
  }

  test('a listed origin uploads with progress, downloads, and connects over polling', async () => {
    const s = await setup(`http://other.example, ${allowedPage.origin}`);
    assertWorks(await visit(allowedPage.origin, s));
  });

  test('an origin not on the list is refused: nothing stored, no socket', async () => {
    const s = await setup(allowedPage.origin);
    const out = await visit(otherPage.origin, s);
    assert.equal(out.upload.status, 0, JSON.stringify(out.upload));
    assert.equal(out.axios.status, 0, JSON.stringify(out.axios));
    assert.equal(out.stored, 0, 'the refused preflight kept the upload from being sent');
    assert.equal(out.download, undefined);
    assert.ok(out.api.error, 'the page cannot read an API response');
    assert.match(out.sio2.error, /error/, JSON.stringify(out.sio2));
    assert.match(out.sio4.error, /error/, JSON.stringify(out.sio4));
  });

  test('with no list (the default, as node-chat) any origin works', async () => {
    const s = await setup('');
    assertWorks(await visit(otherPage.origin, s));
  });
});
