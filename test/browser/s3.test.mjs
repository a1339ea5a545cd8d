// Uploads kept in an S3-compatible bucket (CHATD_BLOBS=s3://…), in headless
// Chromium: a page of another origin uploads with axios as node-chat's SDK
// does, reads the file back by fetch and shows it in an <img>, with the
// bytes proxied by chatd; with CHATD_BLOBS_REDIRECT=true the <img> follows
// chatd's 302 to the bucket. Needs CHATD_TEST_S3 (and AWS_* credentials), as
// the Go tests; under CI both it and Chromium are required.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import { startChatd, createApp, call } from '../lib/chatd.mjs';
import { CHROMIUM, launchChromium } from '../lib/browser.mjs';

const S3 = process.env.CHATD_TEST_S3;
const missing = !existsSync(CHROMIUM) ? `Chromium not found at ${CHROMIUM}` : !S3 ? 'CHATD_TEST_S3 is not set' : '';
if (missing && process.env.CI === 'true') throw new Error(`${missing} (required when CI=true)`);
const skip = missing ? `${missing}; skipping the S3 browser tests` : false;

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'));
const axiosJS = readFileSync(join(dirname(require.resolve('axios/package.json')), 'dist', 'axios.min.js'));

// createBucket makes sure the test bucket exists: one SigV4-signed PUT.
async function createBucket(s3url) {
  const u = new URL(s3url);
  const q = u.searchParams;
  const endpoint = new URL(q.get('endpoint'));
  const region = q.get('region') || 'us-east-1';
  const path = `/${u.host}`;
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  const day = amzDate.slice(0, 8);
  const hash = (s) => crypto.createHash('sha256').update(s).digest('hex');
  const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
  const payload = hash('');
  const canonical = ['PUT', path, '', `host:${endpoint.host}\nx-amz-content-sha256:${payload}\nx-amz-date:${amzDate}\n`,
    'host;x-amz-content-sha256;x-amz-date', payload].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, hash(canonical)].join('\n');
  let key = hmac('AWS4' + process.env.AWS_SECRET_ACCESS_KEY, day);
  for (const part of [region, 's3', 'aws4_request']) key = hmac(key, part);
  const sig = crypto.createHmac('sha256', key).update(toSign).digest('hex');
  const res = await fetch(endpoint.origin + path, {
    method: 'PUT',
    headers: {
      'x-amz-date': amzDate, 'x-amz-content-sha256': payload,
      authorization: `AWS4-HMAC-SHA256 Credential=${process.env.AWS_ACCESS_KEY_ID}/${scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${sig}`,
    },
  });
  const body = await res.text();
  if (res.status !== 200 && !body.includes('BucketAlreadyOwnedByYou')) throw new Error(`create bucket: ${res.status} ${body}`);
}

// withPrefix returns the CHATD_BLOBS value for a prefix of this run's own.
function withPrefix(s3url) {
  const u = new URL(s3url);
  u.pathname = `/browser-${crypto.randomBytes(6).toString('hex')}`;
  return u.toString();
}

function pageServer() {
  return new Promise((resolve) => {
    const srv = createServer((req, res) => {
      if (req.url === '/axios.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(axiosJS);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>app</title><script src="/axios.js"></script>');
    });
    srv.listen(0, '127.0.0.1', () => resolve({ srv, origin: `http://127.0.0.1:${srv.address().port}` }));
  });
}

// inPage uploads a PNG with axios, then fetches fullUrl (when fetchIt) and
// shows it in an <img>.
function inPage(page, chatdURL, appId, token, fetchIt) {
  return page.evaluate(async ({ chatdURL, appId, token, fetchIt }) => {
    const png = Uint8Array.from(atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='), (c) => c.charCodeAt(0));
    const fd = new FormData();
    fd.append('up_file', new Blob([png], { type: 'image/png' }), 'dot.png');
    const out = {};
    const res = await window.axios.post(`${chatdURL}/file/upload`, fd, { params: { token, appId } })
      .catch((err) => ({ status: 0, data: { message: err.message } }));
    out.upload = { status: res.status, ok: res.data.status, url: res.data.data && res.data.data.fullUrl };
    if (!out.upload.url) return out;
    if (fetchIt) {
      try {
        const r = await fetch(out.upload.url, { mode: 'cors' });
        out.fetch = { status: r.status, type: r.headers.get('content-type'), size: (await r.arrayBuffer()).byteLength };
      } catch (err) { out.fetch = { error: String(err) }; }
    }
    out.img = await new Promise((resolve) => {
      const img = new Image();
      img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
      img.onerror = () => resolve({ error: 'image did not load' });
      img.src = out.upload.url;
    });
    return out;
  }, { chatdURL, appId, token, fetchIt });
}

describe('uploads in an S3-compatible bucket, from a browser page of another origin', { skip }, () => {
  let browser, pageSrv;
  const nodes = [];
  before(async () => {
    await createBucket(S3);
    pageSrv = await pageServer();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    for (const n of nodes) await n.stop();
    pageSrv?.srv.close();
  });

  async function run(env, fetchIt) {
    const chatd = await startChatd({ env: { CHATD_BLOBS: withPrefix(S3), CHATD_ALLOWED_ORIGINS: pageSrv.origin, ...env } });
    nodes.push(chatd);
    const ready = await fetch(chatd.url + '/readyz');
    assert.equal(ready.status, 200, 'the node reaches the bucket');
    const app = await createApp(chatd.url, 's3');
    const token = (await call(chatd.url, app, 'POST', '/user/getToken', { userId: 'web', name: 'Web', avatarUri: '' })).data.token;
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(pageSrv.origin + '/');
      return { chatd, out: await inPage(page, chatd.url, app.appId, token, fetchIt) };
    } finally { await ctx.close(); }
  }

  test('proxied: upload, fetch with CORS, and an <img> of fullUrl', async () => {
    const { chatd, out } = await run({}, true);
    assert.deepEqual(out.upload.status, 200, JSON.stringify(out));
    assert.equal(out.upload.ok, 1);
    assert.ok(out.upload.url.startsWith(chatd.url + '/files/'), out.upload.url);
    assert.deepEqual(out.fetch, { status: 200, type: 'image/png', size: 70 });
    assert.deepEqual(out.img, { width: 1, height: 1 });
  });

  test('redirected: fullUrl stays a chatd URL and the <img> loads from the bucket', async () => {
    const { chatd, out } = await run({ CHATD_BLOBS_REDIRECT: 'true' }, false);
    assert.equal(out.upload.ok, 1, JSON.stringify(out));
    assert.ok(out.upload.url.startsWith(chatd.url + '/files/'), out.upload.url);
    const res = await fetch(out.upload.url, { redirect: 'manual', headers: { origin: pageSrv.origin } });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('access-control-allow-origin'), pageSrv.origin);
    assert.ok(!res.headers.get('location').startsWith(chatd.url));
    assert.deepEqual(out.img, { width: 1, height: 1 });
  });
});
