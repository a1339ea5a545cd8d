// Socket.IO clients of both generations node-chat users run: socket.io-client
// 2 (node-chat's SDK, Engine.IO v3) and socket.io-client 4 (Engine.IO v4).
import { io as io4 } from 'socket.io-client';
import io2 from 'socket.io-client-v2';

export const modes = {
  websocket: ['websocket'],
  polling: ['polling'],
  upgrade: ['polling', 'websocket'],
};

// connect opens a socket as the token's user and resolves once connected.
// version is 2 or 4; mode is a key of modes; auth 'query' (node-chat's way)
// or 'auth' (the v4 CONNECT payload); capabilities are declared the same way.
export function connect(url, { version = 4, mode = 'websocket', appId, token, auth = 'query', capabilities, timeout = 10000 } = {}) {
  const socket = open(url, { version, mode, appId, token, auth, capabilities });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.close(); reject(new Error('connect timeout')); }, timeout);
    socket.once('connect', () => { clearTimeout(timer); resolve(socket); });
    const fail = (err) => { clearTimeout(timer); socket.close(); reject(err instanceof Error ? err : new Error(String(err))); };
    socket.once('connect_error', fail);
    socket.once('error', fail);
  });
}

// open creates the socket without waiting.
export function open(url, { version = 4, mode = 'websocket', appId, token, auth = 'query', capabilities, extra = {} } = {}) {
  const transports = modes[mode];
  const query = { token, appId };
  if (capabilities) query.capabilities = capabilities.join(',');
  if (version === 2) {
    return io2(url, { query, transports, forceNew: true, reconnection: false, ...extra });
  }
  const opts = { transports, forceNew: true, reconnection: false, ...extra };
  if (auth === 'auth') opts.auth = capabilities ? { token, appId, capabilities } : { token, appId };
  else opts.query = query;
  return io4(url, opts);
}

// call emits an event with an ack and resolves with the error-first reply.
export function call(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), 10000);
    socket.emit(event, ...args, (err, data) => { clearTimeout(timer); resolve({ err, data }); });
  });
}

// collect records every event of a name a socket receives.
export function collect(socket, event) {
  const got = [];
  socket.on(event, (x) => got.push(x));
  return got;
}

export async function until(cond, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
