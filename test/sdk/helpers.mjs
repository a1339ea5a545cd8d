// Helpers for the SDK tests: users with tokens, SDK clients on the npm ws
// WebSocket, and a WebSocket wrapper the tests can cut off or gate.
import WS from 'ws';
import { call as http } from '../lib/chatd.mjs';
import { ChatdClient } from '../../sdk/js/chatd.js';

export async function tokenFor(url, app, userId, name = userId.toUpperCase()) {
  const r = await http(url, app, 'POST', '/user/getToken', { userId, name, avatarUri: '' });
  if (r.status !== 1) throw new Error('getToken: ' + JSON.stringify(r));
  return r.data.token;
}

// Net is a switchboard for the sockets of one client: while offline, new
// sockets dial a dead port; dropAcks makes the next ack vanish together with
// the connection, as when the network fails after the server committed.
export class Net {
  constructor() {
    this.offline = false;
    this.dropAcks = false;
    this.dropPushes = 0; // swallow this many message pushes
    this.doublePushes = false; // deliver every message push twice
    this.sockets = new Set();
    this.sent = [];
  }

  WebSocket() {
    const net = this;
    return class GatedWebSocket {
      constructor(url) {
        this.ws = new WS(net.offline ? 'ws://127.0.0.1:1/socket.io/' : url);
        net.sockets.add(this);
        this.ws.onopen = (e) => this.onopen?.(e);
        this.ws.onerror = (e) => this.onerror?.(e);
        this.ws.onclose = (e) => { net.sockets.delete(this); this.onclose?.(e); };
        this.ws.onmessage = (e) => {
          if (net.dropAcks && typeof e.data === 'string' && e.data.startsWith('43')) {
            net.dropAcks = false;
            this.ws.terminate();
            return;
          }
          const push = typeof e.data === 'string' && e.data.startsWith('42["message"');
          if (push && net.dropPushes > 0) { net.dropPushes--; return; }
          this.onmessage?.(e);
          if (push && net.doublePushes) this.onmessage?.(e);
        };
      }
      send(s) { net.sent.push(s); this.ws.send(s); }
      close() { this.ws.close(); }
    };
  }

  // cut drops every open socket abruptly.
  cut() { for (const s of this.sockets) s.ws.terminate(); }
}

export function client(url, appId, token, opts = {}) {
  const net = opts.net || new Net();
  const c = new ChatdClient({
    url, appId, token, WebSocket: net.WebSocket(), minReconnectDelay: 50, maxReconnectDelay: 300, ...opts,
  });
  c.net = net;
  return c;
}

// record collects a client's message events.
export function record(c) {
  const got = [];
  c.on('message', (m) => got.push(m));
  return got;
}

export async function until(cond, what, ms = 15000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}
