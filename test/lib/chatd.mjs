// Helpers shared by the Node end-to-end tests: start a real chatd binary on a
// free port with its own data directory, create an app, and sign requests the
// way node-chat backends do (npm qs + MD5).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import crypto from 'node:crypto';
import qs from 'qs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let builtBin;
// chatdBin returns the chatd binary: $CHATD_BIN, or one built once into a temp dir.
export function chatdBin() {
  if (process.env.CHATD_BIN && existsSync(process.env.CHATD_BIN)) return process.env.CHATD_BIN;
  if (!builtBin) {
    builtBin = join(mkdtempSync(join(tmpdir(), 'chatd-bin-')), 'chatd');
    execFileSync('go', ['build', '-o', builtBin, './cmd/chatd'], { cwd: repo, stdio: 'inherit' });
  }
  return builtBin;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const ADMIN_KEY = 'test-admin-key-' + crypto.randomBytes(8).toString('hex');

// startChatd runs chatd and resolves once /healthz answers. Pass env to
// override settings; dataDir to reuse a data directory across restarts.
export async function startChatd({ env = {}, dataDir, port } = {}) {
  port = port || await freePort();
  const ownDir = !dataDir;
  dataDir = dataDir || mkdtempSync(join(tmpdir(), 'chatd-data-'));
  const proc = spawn(chatdBin(), [], {
    env: {
      ...process.env,
      CHATD_ADDR: `127.0.0.1:${port}`,
      CHATD_STORE: `sqlite:${join(dataDir, 'chatd.db')}`,
      CHATD_BLOBS: `file:${join(dataDir, 'files')}`,
      CHATD_ADMIN_KEY: ADMIN_KEY,
      CHATD_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (b) => { stderr += b; if (process.env.CHATD_TEST_VERBOSE) process.stderr.write(b); });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`chatd exited with ${proc.exitCode}: ${stderr}`);
    try {
      const res = await fetch(url + '/healthz');
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error('chatd did not start: ' + stderr); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url, port, proc, dataDir,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) {
        const done = exited(proc);
        proc.kill(signal);
        await done;
      }
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// exited resolves once proc has exited, also when it already had: an 'exit'
// listener added after the event would wait for ever.
export function exited(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => proc.once('exit', r));
}

// createApp registers an app through the admin route.
export async function createApp(url, appName = 'test app') {
  const res = await fetch(url + '/app/create', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + ADMIN_KEY },
    body: JSON.stringify({ appName, description: 'created by the e2e tests' }),
  });
  const body = await res.json();
  if (body.status !== 1) throw new Error('app create failed: ' + JSON.stringify(body));
  return body.data;
}

// sign is node-chat's recipe: top-level keys sorted, qs.stringify, then
// &app_key=<secret>, MD5 in hex.
export function sign(params, secret) {
  const sorted = {};
  for (const k of Object.keys(params).sort()) sorted[k] = params[k];
  return crypto.createHash('md5').update(qs.stringify(sorted) + '&app_key=' + secret).digest('hex');
}

export function signedParams(app, params) {
  const p = {
    ...params,
    app_id: app.appId,
    time_stamp: String(Date.now()),
    nonce_str: crypto.randomBytes(8).toString('hex'),
  };
  p.sign = sign(p, app.appSecret);
  return p;
}

// call makes a signed request: GET with a query string, POST with a JSON body
// (or a form body when form is true).
export async function call(url, app, method, path, params = {}, { form = false } = {}) {
  const p = signedParams(app, params);
  let res;
  if (method === 'GET') {
    res = await fetch(url + path + '?' + qs.stringify(p));
  } else if (form) {
    res = await fetch(url + path, {
      method, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: qs.stringify(p),
    });
  } else {
    res = await fetch(url + path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(p) });
  }
  const body = await res.json();
  return { httpStatus: res.status, ...body };
}
