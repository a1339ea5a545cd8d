// chatd JS SDK: a dependency-free ES module that talks to chatd over
// Socket.IO v4 / Engine.IO v4 on a plain WebSocket. It keeps the conversation
// list up to date from pushes, reconnects with backoff, recovers missed
// messages with `sync` (per-conversation seq), de-duplicates by msgId and
// retries unacknowledged sends with the same clientMsgId.
//
// Browser: import { ChatdClient } from '/sdk/chatd.js'.
// Node 20: pass a WebSocket constructor (npm `ws`) as the WebSocket option.

export const MessageType = Object.freeze({ TEXT: 1, VOICE: 2, IMAGE: 3, FILE: 4, LOCATION: 5, CUSTOM: 6, NOTICE: 7 });
export const ConversationType = Object.freeze({ PRIVATE: 1, GROUP: 2 });

// ChatdError is a failed request: status is chatd's code (1002 bad parameter,
// 1000 not a member, …), or 0 for a client-side failure.
export class ChatdError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = 'ChatdError';
    this.status = status;
  }
}

// Emitter is the small event emitter ChatdClient extends.
export class Emitter {
  constructor() { this._handlers = new Map(); }
  on(event, fn) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(fn);
    return () => this.off(event, fn);
  }
  once(event, fn) {
    const off = this.on(event, (...a) => { off(); fn(...a); });
    return off;
  }
  off(event, fn) { this._handlers.get(event)?.delete(fn); }
  emit(event, ...args) {
    const hs = this._handlers.get(event);
    if (!hs) return;
    for (const fn of [...hs]) {
      try { fn(...args); } catch (err) {
        // A throwing listener must not break the client's own bookkeeping.
        if (event !== 'error') this.emit('error', err); else setTimeout(() => { throw err; });
      }
    }
  }
}

let clientMsgCounter = 0;
// newClientMsgId is unique per sender and conversation with overwhelming odds.
export function newClientMsgId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  clientMsgCounter = (clientMsgCounter + 1) % 1e9;
  return Date.now().toString(36) + '-' + clientMsgCounter.toString(36) + '-' + Math.random().toString(36).slice(2, 12);
}

const SEEN_PER_SID = 2000; // msgIds remembered per conversation for de-duplication
const SYNC_PAGE = 100;
const SYNC_RETRY = 1000; // ms before a sync that failed on the client side is tried again
// What the SDK understands beyond node-chat's protocol (docs/socket-protocol.md):
// own-messages: pushes of the user's own messages sent from another device or
// over the HTTP API (data.own is true), handled like any other message.
// message-updated: pushes of recalls, edits, reactions and the user's own
// deletes (see "Message updates" in sdk/js/README.md).
// group-events: group-event pushes when the user leaves a group (removed,
// left, dismissed), emitted as 'groupEvent'.
// typing, receipts: typing indicators and read receipts (see "Typing and
// read receipts, presence, conversation settings" in sdk/js/README.md).
// presence: presence pushes of the users subscribed to.
// session-settings: session-updated pushes (pin, mute, hide, draft changed on
// another device) and data.muted on messages of a muted conversation.
const CAPABILITIES = Object.freeze(['own-messages', 'message-updated', 'group-events', 'typing', 'receipts', 'presence', 'session-settings']);
const TYPING_REPEAT = 3000; // ms between typing events while the user keeps typing

// ChatdClient is one user's connection to chatd.
export class ChatdClient extends Emitter {
  // options: {url, appId, token, userId?, WebSocket?, XMLHttpRequest?, path?,
  // reconnect? (default true), minReconnectDelay? (500 ms), maxReconnectDelay? (10 s),
  // requestTimeout? (30 s, only while connected)}
  constructor(options = {}) {
    super();
    const loc = globalThis.location;
    this.url = String(options.url || (loc ? loc.origin : '')).replace(/\/+$/, '');
    if (!this.url) throw new ChatdError('ChatdClient: url is required outside a browser');
    if (!options.appId || !options.token) throw new ChatdError('ChatdClient: appId and token are required');
    this.appId = String(options.appId);
    this.token = String(options.token);
    this.userId = options.userId ? String(options.userId) : null;
    this.path = options.path || '/socket.io/';
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    this._XHR = options.XMLHttpRequest || globalThis.XMLHttpRequest;
    this.reconnect = options.reconnect !== false;
    this.minReconnectDelay = options.minReconnectDelay ?? 500;
    this.maxReconnectDelay = options.maxReconnectDelay ?? 10000;
    this.requestTimeout = options.requestTimeout ?? 30000;
    if (!this._WebSocket) throw new ChatdError('ChatdClient: no WebSocket; pass the WebSocket option (npm ws under Node)');

    this.state = 'idle'; // idle, connecting, connected, reconnecting, closed
    this._ws = null;
    this._ackId = 0;
    this._inflight = new Map(); // ack id → request
    this._queue = []; // requests waiting for a connection
    this._attempt = 0;
    this._timer = null;
    this._pingTimer = null;
    this._pingTimeout = 45000;
    this._everConnected = false;
    this._sessions = new Map(); // sid → session (with unread, lastMsg, lastSeq, readSeq)
    this._tracks = new Map(); // sid → Track: what was emitted, for exactly-once delivery
    this._held = []; // messages that arrived before the first conversation list
    this._tick = 0; // counts sync requests, to tell what arrived before one
    this._connectWaiters = [];
    this._sessionsLoaded = false;
  }

  // connect opens the connection and resolves once connected and the
  // conversation list is loaded. It rejects if authentication fails.
  connect() {
    if (this.state === 'connected') return Promise.resolve();
    const p = new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    if (this.state === 'idle' || this.state === 'closed') {
      this._setState('connecting');
      this._open();
    }
    return p;
  }

  // close ends the connection for good; pending requests are rejected.
  close() {
    this._setState('closed');
    clearTimeout(this._timer);
    clearTimeout(this._pingTimer);
    clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    for (const t of this._tracks.values()) clearTimeout(t.retry);
    const ws = this._ws;
    this._ws = null;
    if (ws) { try { ws.close(); } catch { /* already closed */ } }
    const err = new ChatdError('client closed');
    for (const r of [...this._inflight.values(), ...this._queue]) { clearTimeout(r.timer); r.reject(err); }
    this._inflight.clear();
    this._queue = [];
    this._settleConnect(err);
  }

  // conversations returns the known conversations: pinned ones first (most
  // recent pin first), then the others, most recent first. Hidden ones are
  // left out until a message comes after the hide.
  conversations() {
    return [...this._sessions.values()].filter(visible)
      .sort((a, b) => (b.pinned ? b.pinnedAt || 1 : 0) - (a.pinned ? a.pinnedAt || 1 : 0) || lastTime(b) - lastTime(a));
  }

  conversation(sid) { return this._sessions.get(sid); }

  // refreshConversations reloads the list from chatd.
  async refreshConversations() {
    const known = this._knownSeqs();
    const list = await this.request('session-list');
    this._applySessions(list, known);
    return this.conversations();
  }

  // history returns a page of messages before `before` (a msgId), oldest
  // first. Without `before` it is the newest page; with `around` (a seq, e.g.
  // a search hit's) the page around that message. A page is a read of the
  // store: it may hold messages also emitted as `message` events (merge by
  // msgId), and it never counts as emitted.
  async history(sid, { limit = 20, before, around } = {}) {
    const arg = { sid, limit };
    if (before) arg.lastmsgId = before;
    if (around) arg.aroundSeq = around; // the page around a seq: to open a search hit
    const page = await this.request('session-message-list', arg);
    const msgs = page.slice().reverse().map((m) => ({ ...m, sid }));
    // A page newer than what was emitted means pushes were missed: catch up.
    const t = this._tracks.get(sid);
    const top = msgs.length ? msgs[msgs.length - 1].seq || 0 : 0;
    if (t && top > t.delivered) this._sync(sid);
    return msgs;
  }

  // send sends a message to a user (or a group with {group: true}) and
  // resolves with the stored message. Unacknowledged sends are retried after
  // a reconnect with the same clientMsgId, so they are stored once.
  // Options replyTo (a msgId of the same conversation), mentions (user
  // ids) and mentionAll (groups) are sent along when given.
  async send(targetId, messageType, content, { group = false, clientMsgId = newClientMsgId(), replyTo, mentions, mentionAll } = {}) {
    const event = group ? 'send-group-message' : 'send-private-message';
    const arg = { targetId: String(targetId), messageType, content, clientMsgId };
    if (replyTo) arg.replyTo = String(replyTo);
    if (mentions?.length) arg.mentions = mentions.map(String);
    if (mentionAll) arg.mentionAll = true;
    const res = await this.request(event, arg);
    if (res && res.senderUserId && !this.userId) this.userId = res.senderUserId;
    const sid = res?.sendSession?.sid;
    if (isMessage(res)) this._ingest(sid, res, res.sendSession);
    return { ...res, sid };
  }

  sendText(targetId, text, opts) { return this.send(targetId, MessageType.TEXT, { content: String(text) }, opts); }
  // image: {url, fid?, name?, size?, width?, height?} (for example the result of upload)
  sendImage(targetId, image, opts) { return this.send(targetId, MessageType.IMAGE, pick(image, ['url', 'fid', 'name', 'size', 'width', 'height', 'contentType'], 'fullUrl'), opts); }
  // file: {url, fid?, name?, size?, contentType?}
  sendFile(targetId, file, opts) { return this.send(targetId, MessageType.FILE, pick(file, ['url', 'fid', 'name', 'size', 'contentType'], 'fullUrl'), opts); }
  // location: {latitude, longitude, name?, address?}
  sendLocation(targetId, loc, opts) { return this.send(targetId, MessageType.LOCATION, { ...loc }, opts); }
  sendCustom(targetId, content, opts) { return this.send(targetId, MessageType.CUSTOM, { ...content }, opts); }
  // reply answers msg (a message with sid, msgId, targetId…) with a text,
  // in msg's conversation.
  reply(msg, text, opts = {}) {
    const s = this._sessions.get(msg.sid);
    const group = (s?.conversationType ?? msg.conversationType) === ConversationType.GROUP;
    const target = s?.targetId ?? (group ? msg.targetId : (msg.senderUserId === this.userId ? msg.targetId : msg.senderUserId));
    return this.sendText(target, text, { ...opts, group, replyTo: msg.msgId });
  }

  // --- message updates (recall, edit, reactions, delete for me) ---
  //
  // Each resolves with the new state and applies it locally as a push would:
  // a 'message-updated' event follows unless the state was already known.

  recall(sid, msgId) { return this._change('recall-message', { sid, msgId }); }
  edit(sid, msgId, content) {
    if (typeof content === 'string') content = { content };
    return this._change('edit-message', { sid, msgId, content });
  }
  react(sid, msgId, emoji) { return this._change('react', { sid, msgId, emoji }); }
  unreact(sid, msgId, emoji) { return this._change('unreact', { sid, msgId, emoji }); }
  // deleteForMe hides one message on all of this user's devices.
  deleteForMe(sid, msgId) { return this._change('delete-message', { sid, msgId }); }
  // clear hides the whole conversation so far on all of this user's devices.
  clear(sid) { return this._change('clear-session', { sid }); }

  // --- typing and read receipts ---
  //
  // typing(sid) tells the other members this user is typing; call it on
  // every keystroke: it emits at most once per TYPING_REPEAT ms. Others get a
  // 'typing' event {sid, userId, typing, expiresIn}; the indicator ends by
  // itself after expiresIn ms without a repeat, on typing-stop, or when a
  // message from that user arrives.
  typing(sid) {
    const now = Date.now();
    this._typingSent ??= new Map();
    if (now - (this._typingSent.get(sid) || 0) < TYPING_REPEAT) return Promise.resolve();
    this._typingSent.set(sid, now);
    return this.request('typing', { sid }).then(() => {}, () => {});
  }
  typingStop(sid) {
    this._typingSent?.delete(sid);
    return this.request('typing-stop', { sid }).then(() => {}, () => {});
  }
  // typingUsers lists who is typing in sid now.
  typingUsers(sid) { return [...(this._typers?.get(sid)?.keys() || [])]; }
  // readCount: how many group members are known (from read-receipts pushes
  // since connecting) to have read the message at seq; messageReaders is exact.
  readCount(sid, seq) { return Object.values(this._sessions.get(sid)?.readers || {}).filter((r) => r >= seq).length; }
  // messageReaders: {readCount, memberCount, readers?: [{userId, readSeq}]}.
  messageReaders(sid, msgId) { return this.request('message-readers', { sid, msgId }); }

  _setTyping(sid, userId, on, expiresIn) {
    this._typers ??= new Map();
    let m = this._typers.get(sid);
    const old = m?.get(userId);
    if (old) clearTimeout(old);
    if (on) {
      if (!m) this._typers.set(sid, m = new Map());
      m.set(userId, setTimeout(() => this._setTyping(sid, userId, false), expiresIn || 6000));
    } else if (old) {
      m.delete(userId);
    } else {
      return;
    }
    this.emit('typing', { sid, userId, typing: on, expiresIn: on ? expiresIn : 0 });
  }

  // --- conversation settings and blocking ---
  //
  // Each resolves with the session's settings {sid, pinned, pinnedAt?, muted,
  // hidden, draft}; the user's other devices get a 'session-updated' event,
  // and every device a 'conversations' event.
  updateSession(sid, { pinned, muted, draft } = {}) {
    return this._settings('session-update', { sid, pinned, muted, draft });
  }
  pin(sid, on = true) { return this.updateSession(sid, { pinned: on }); }
  mute(sid, on = true) { return this.updateSession(sid, { muted: on }); }
  setDraft(sid, draft) { return this.updateSession(sid, { draft: draft || '' }); }
  // hide takes sid out of the list until its next message.
  hide(sid) { return this._settings('session-hide', { sid }); }
  // unreadTotal: {unread, mentionedUnread, sessions}, muted sessions excepted.
  unreadTotal() { return this.request('session-unread-total'); }
  // blockUser, unblockUser, blockedList resolve with the blocked user ids; a
  // blocked user's private messages to this user are refused ("blocked").
  async blockUser(userIds) { return (await this.request('block-user', { userIds: [].concat(userIds) })).blocked; }
  async unblockUser(userIds) { return (await this.request('unblock-user', { userIds: [].concat(userIds) })).blocked; }
  async blockedList() { return (await this.request('blocked-list')).blocked; }

  async _settings(event, arg) {
    const st = await this.request(event, arg);
    this._applySettings(st);
    return st;
  }
  _applySettings(st) {
    const s = st && this._sessions.get(st.sid);
    if (!s) return;
    const wasHidden = s.hidden && !visible(s);
    Object.assign(s, { pinned: !!st.pinned, pinnedAt: st.pinnedAt || 0, muted: !!st.muted, draft: st.draft || '' });
    if (st.hidden && !wasHidden) Object.assign(s, { hidden: true, hiddenSeq: s.lastSeq || 0 });
    this.emit('conversations', this.conversations());
  }

  // --- presence ---
  //
  // subscribePresence resolves with [{userId, online, lastSeen}] for those of
  // userIds this user shares a conversation with; 'presence' events follow on
  // each change. Subscriptions are renewed after a reconnect, and the states
  // then current are emitted as 'presence' events.
  async subscribePresence(userIds) {
    const states = await this.request('presence-subscribe', { userIds });
    this._watched ??= new Set();
    for (const s of states || []) this._watched.add(s.userId);
    return states;
  }
  unsubscribePresence(userIds) {
    if (userIds) for (const u of userIds) this._watched?.delete(u);
    else this._watched?.clear();
    return this.request('presence-unsubscribe', userIds ? { userIds } : {});
  }

  async _change(event, arg) {
    const res = await this.request(event, arg);
    if (res && typeof res === 'object') {
      if (event === 'delete-message' || event === 'clear-session') this._applyUpdate(arg.sid, { ...res, deleted: true }, 'ack');
      else this._applyUpdate(arg.sid, res, 'ack');
    }
    return res;
  }

  // syncChanges fetches what changed in sid since this client's change
  // cursor and applies it; it runs by itself after reconnects and gaps.
  syncChanges(sid) {
    const t = this._track(sid, 0);
    if (t.changing) { t.changeAgain = true; return t.changing; }
    t.changing = this._runSyncChanges(t, sid).finally(() => { t.changing = null; });
    return t.changing;
  }

  async _runSyncChanges(t, sid) {
    try {
      for (;;) {
        t.changeAgain = false;
        const ch = await this.request('sync-changes', { sid, afterVersion: t.version, limit: SYNC_PAGE });
        if (!ch || !Array.isArray(ch.messages)) throw new ChatdError('sync-changes: malformed answer');
        for (const h of ch.hidden || []) this._applyUpdate(sid, { ...h, deleted: true }, 'sync');
        for (const m of ch.messages) this._applyUpdate(sid, m, 'sync');
        if ((ch.version || 0) > t.version) t.version = ch.version;
        if (!ch.more && !t.changeAgain) return;
      }
    } catch (err) {
      if (this.state !== 'closed') this.emit('error', err);
    }
  }

  // _applyUpdate applies a changed message or a hidden range once: a state
  // is applied only when its version is newer than the one known for that
  // message (or range), so pushes, acks and sync-changes may overlap.
  // Versions from pushes and acks (source 'push', 'ack' or 'sync') also
  // move the conversation's change cursor; one beyond the next version
  // means some were missed: catch up.
  _applyUpdate(sid, u, source) {
    const t = this._track(sid, 0);
    const v = u.version || 0;
    const fromPush = source === 'push';
    if (source !== 'sync') {
      if (v === t.version + 1) t.version = v;
      else if (v > t.version + 1) this.syncChanges(sid);
    }
    const key = u.deleted ? 'hidden:' + u.fromSeq + '-' + u.toSeq : u.msgId;
    if (!key) return;
    const have = t.versions.get(key) || 0;
    if (have > v) return;
    if (have === v) {
      // The same state again, unless it is an exact one (an ack or
      // sync-changes) that corrects the "me" a push had to guess.
      if (fromPush || u.deleted) return;
      const known = t.mine.get(u.msgId) || new Set();
      const exact = (u.reactions || []).filter((r) => r.me).map((r) => r.emoji);
      if (exact.length === known.size && exact.every((e) => known.has(e))) return;
    }
    t.versions.set(key, v);
    if (t.versions.size > SEEN_PER_SID) t.versions.delete(t.versions.keys().next().value);
    const out = { ...u, sid };
    delete out.sendSession;
    if (!u.deleted) {
      // "me" is exact in acks and sync-changes. A push's "me" is the
      // actor's (of an edit or a reaction): it says whose reaction changed,
      // so only this user's own reactions move what is known.
      const known = t.mine.get(u.msgId) || new Set();
      if (fromPush) {
        if (u.reaction && u.reaction.userId === this.userId) {
          if (u.reaction.added) known.add(u.reaction.emoji); else known.delete(u.reaction.emoji);
        }
        if (u.recalled) known.clear(); // its reactions went with it
        for (const r of out.reactions || []) r.me = known.has(r.emoji);
      } else {
        known.clear();
        for (const r of out.reactions || []) if (r.me) known.add(r.emoji);
      }
      t.mine.set(u.msgId, known);
    }
    if (!u.deleted && !t.messages.has(u.msgId)) {
      // Not emitted yet (held behind a gap or before the first list, or
      // still to come from sync): the message, when emitted, must carry
      // this state, not the older one it arrived with.
      t.early.set(u.msgId, out);
      if (t.early.size > SEEN_PER_SID) t.early.delete(t.early.keys().next().value);
    }
    const s = this._sessions.get(sid);
    if (s && s.lastMsg) {
      if (u.deleted ? (s.lastSeq >= u.fromSeq && s.lastSeq <= u.toSeq) : s.lastMsg.msgId === u.msgId) {
        s.lastMsg = u.deleted ? null : { ...s.lastMsg, content: previewText(u.content), body: u.content, recalled: !!u.recalled };
      }
    }
    this.emit('message-updated', out, s);
    if (s) this.emit('conversations', this.conversations());
  }

  // markRead marks a conversation read up to its newest message.
  // search finds messages in this user's conversations, newest first
  // (docs/socket-protocol.md, "Search"); pass the answer's next as before
  // for the following page.
  search(q, { sid, senderUserId, messageType, before, limit } = {}) {
    return this.request('search-messages', { q, sid, senderUserId, messageType, before, limit });
  }

  async markRead(sid) {
    await this.request('set-session-read', sid);
    const s = this._sessions.get(sid);
    if (s) {
      s.unread = 0;
      s.mentionedUnread = 0;
      s.readSeq = Math.max(s.readSeq || 0, this._tracks.get(sid)?.delivered || 0);
      this.emit('conversations', this.conversations());
    }
  }

  // upload posts a File/Blob to /file/upload and resolves with {fid,
  // fullUrl, name, size, contentType}. onProgress gets {loaded, total}.
  upload(file, { onProgress, name } = {}) {
    const target = `${this.url}/file/upload?token=${encodeURIComponent(this.token)}&appId=${encodeURIComponent(this.appId)}`;
    const form = new FormData();
    if (name) form.append('up_file', file, name); else form.append('up_file', file);
    const parse = (status, text) => {
      let body;
      try { body = JSON.parse(text); } catch { throw new ChatdError(`upload failed: HTTP ${status}`); }
      if (body.status !== 1) throw new ChatdError(body.message || `upload failed: HTTP ${status}`, body.status);
      return body.data;
    };
    if (!this._XHR) {
      // Node has no XMLHttpRequest: fetch has no upload progress, so report the end only.
      return fetch(target, { method: 'POST', body: form }).then(async (res) => {
        const data = parse(res.status, await res.text());
        onProgress?.({ loaded: data.size, total: data.size });
        return data;
      });
    }
    return new Promise((resolve, reject) => {
      const xhr = new this._XHR();
      xhr.open('POST', target);
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = (e) => onProgress({ loaded: e.loaded, total: e.lengthComputable ? e.total : undefined });
      }
      xhr.onload = () => { try { resolve(parse(xhr.status, xhr.responseText)); } catch (err) { reject(err); } };
      xhr.onerror = () => reject(new ChatdError('upload failed: network error'));
      xhr.onabort = () => reject(new ChatdError('upload aborted'));
      xhr.send(form);
    });
  }

  // request emits a socket event with an ack and resolves with its data. It
  // waits for a connection, and a request cut off by a disconnect is sent
  // again after reconnecting (every chatd event is safe to repeat).
  request(event, ...args) {
    return new Promise((resolve, reject) => {
      const r = { event, args, resolve, reject, timer: null };
      if (this.state === 'closed') { reject(new ChatdError('client closed')); return; }
      if (this._ready()) this._transmit(r); else this._queue.push(r);
    });
  }

  // --- connection ---

  _ready() { return this._socketOpen === true; }

  _open() {
    clearTimeout(this._timer);
    this._socketOpen = false;
    const u = new URL(this.path, this.url);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.search = 'EIO=4&transport=websocket';
    let ws;
    try { ws = new this._WebSocket(u.toString()); } catch (err) { this._dropped(err); return; }
    this._ws = ws;
    ws.onmessage = (e) => { if (this._ws === ws) this._onFrame(typeof e.data === 'string' ? e.data : String(e.data)); };
    ws.onclose = () => { if (this._ws === ws) this._dropped(new ChatdError('connection closed')); };
    ws.onerror = () => { /* onclose follows */ };
  }

  _onFrame(frame) {
    const type = frame[0];
    if (type === '0') { // Engine.IO open
      try {
        const hs = JSON.parse(frame.slice(1));
        this._pingTimeout = (hs.pingInterval || 25000) + (hs.pingTimeout || 20000);
      } catch { /* defaults */ }
      this._armPing();
      this._raw('40' + JSON.stringify({ token: this.token, appId: this.appId, capabilities: CAPABILITIES }));
    } else if (type === '2') { // ping
      this._armPing();
      this._raw('3' + frame.slice(1));
    } else if (type === '1') { // close
      this._ws?.close();
    } else if (type === '4') {
      this._onPacket(frame.slice(1));
    }
  }

  _armPing() {
    clearTimeout(this._pingTimer);
    // No ping for a whole interval + timeout: the connection is dead.
    this._pingTimer = setTimeout(() => this._ws?.close(), this._pingTimeout + 1000);
  }

  _onPacket(p) {
    const type = p[0];
    let i = 1;
    if (p[i] === '/') { // non-default namespace: not ours
      const comma = p.indexOf(',');
      if (p.slice(1, comma) !== '/') return;
      i = comma + 1;
    }
    let id = '';
    while (i < p.length && p[i] >= '0' && p[i] <= '9') id += p[i++];
    let data;
    try { data = i < p.length ? JSON.parse(p.slice(i)) : undefined; } catch { return; }
    switch (type) {
      case '0': this._onConnect(); break;
      case '1': this._ws?.close(); break; // server disconnected us: reconnect
      case '4': this._onConnectError(data); break;
      case '2': if (Array.isArray(data)) this._onEvent(data[0], data.slice(1)); break;
      case '3': this._onAck(Number(id), Array.isArray(data) ? data : []); break;
      default: break; // binary packets are not used by chatd's chat events
    }
  }

  async _onConnect() {
    this._socketOpen = true;
    // Requests first: the list and syncs queued below go out after any
    // requests that were waiting, all on the fresh connection.
    const waiting = this._queue;
    this._queue = [];
    for (const r of waiting) this._transmit(r);
    const ws = this._ws;
    try {
      const known = this._knownSeqs();
      this._applySessions(await this.request('session-list'), known);
    } catch (err) {
      if (this.state === 'closed') return;
      this.emit('error', err);
      // Without the list nothing can be caught up: connect again (with backoff).
      if (this._ws === ws) ws?.close();
      return;
    }
    if (!this._ready() || this._ws !== ws) return; // dropped meanwhile: the next connection reports
    this._attempt = 0;
    const first = !this._everConnected;
    this._everConnected = true;
    this._setState('connected');
    this.emit('connect', { reconnect: !first });
    this._settleConnect(null);
    // Renew presence subscriptions; changes missed while away arrive as the states.
    if (!first && this._watched?.size) {
      this.subscribePresence([...this._watched]).then((states) => { for (const p of states || []) this.emit('presence', p); },
        (err) => this.emit('error', err));
    }
  }

  _onConnectError(data) {
    const err = new ChatdError(data?.message || 'connection refused', 401);
    // A refused token will not get better by retrying.
    this._settleConnect(err);
    this.close();
    this.emit('error', err);
  }

  _settleConnect(err) {
    const ws = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of ws) { if (err) w.reject(err); else w.resolve(); }
  }

  _dropped(err) {
    clearTimeout(this._pingTimer);
    this._socketOpen = false;
    this._ws = null;
    if (this.state === 'closed') return;
    // In-flight requests go back to the front of the queue, to be sent again.
    const again = [...this._inflight.values()].sort((a, b) => a.id - b.id);
    for (const r of again) { clearTimeout(r.timer); r.timer = null; }
    this._inflight.clear();
    this._queue = [...again, ...this._queue];
    const wasConnected = this.state === 'connected';
    if (wasConnected) this.emit('disconnect', err);
    if (!this.reconnect) {
      this.close();
      return;
    }
    this._setState('reconnecting');
    const base = Math.min(this.maxReconnectDelay, this.minReconnectDelay * 2 ** Math.min(this._attempt, 10));
    const delay = base / 2 + Math.random() * base / 2;
    this._attempt++;
    this._timer = setTimeout(() => this._open(), delay);
  }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  _raw(s) {
    try { this._ws?.send(s); } catch { /* the close handler reconnects */ }
  }

  _transmit(r) {
    r.id = ++this._ackId;
    this._inflight.set(r.id, r);
    if (this.requestTimeout > 0) {
      r.timer = setTimeout(() => {
        this._inflight.delete(r.id);
        r.reject(new ChatdError(`${r.event}: no answer within ${this.requestTimeout} ms`));
      }, this.requestTimeout);
    }
    this._raw('42' + r.id + JSON.stringify([r.event, ...r.args]));
  }

  _onAck(id, args) {
    const r = this._inflight.get(id);
    if (!r) return;
    this._inflight.delete(id);
    clearTimeout(r.timer);
    const [err, data] = args;
    if (err) r.reject(new ChatdError(err.message || String(err), err.status || 0));
    else r.resolve(data);
  }

  _onEvent(name, args) {
    if (name === 'message') {
      const env = args[0];
      const d = env && env.data;
      if (!isMessage(d)) return;
      this._setTyping(d.sendSession.sid, d.senderUserId, false); // their message ends their typing
      this._ingest(d.sendSession.sid, d, d.sendSession);
    } else if (name === 'message-updated') {
      const u = args[0];
      if (u && typeof u.sid === 'string' && (typeof u.msgId === 'string' || u.deleted)) this._applyUpdate(u.sid, u, 'push');
    } else if (name === 'typing' || name === 'typing-stop') {
      const t = args[0] || {};
      if (typeof t.sid === 'string' && typeof t.userId === 'string') this._setTyping(t.sid, t.userId, name === 'typing', t.expiresIn);
    } else if (name === 'read-receipts') { // a group's readers, batched (at most one a second)
      const r = args[0] || {};
      const s = this._sessions.get(r.sid);
      if (s && Array.isArray(r.readers)) {
        s.readers ??= {};
        for (const m of r.readers) if (m && typeof m.userId === 'string') s.readers[m.userId] = Math.max(s.readers[m.userId] || 0, m.readSeq || 0);
      }
      this.emit('read-receipts', r);
    } else if (name === 'session-updated') {
      const st = args[0];
      if (st && typeof st.sid === 'string') {
        this._applySettings(st);
        this.emit('session-updated', st);
      }
    } else if (name === 'presence') {
      const p = args[0];
      if (p && typeof p.userId === 'string') this.emit('presence', p);
    } else if (name === 'read-receipt') {
      const r = args[0] || {};
      const s = this._sessions.get(r.sid);
      if (s && typeof r.readSeq === 'number') s.peerReadSeq = Math.max(s.peerReadSeq || 0, r.readSeq);
      this.emit('read-receipt', r);
    } else if (name === 'session-read') {
      const r = args[0] || {};
      const s = this._sessions.get(r.sid);
      if (s) {
        s.unread = r.unread || 0;
        if (!s.unread) s.mentionedUnread = 0;
        s.readSeq = Math.max(s.readSeq || 0, r.readSeq || 0);
      }
      this.emit('read', r);
      this.emit('conversations', this.conversations());
    } else if (name === 'group-event') {
      this._onGroupEvent(args[0]);
    } else {
      this.emit('event', name, args);
    }
  }

  // --- conversations and exactly-once delivery ---
  //
  // The convergence rule (sdk/js/README.md, "Exactly once"). Per conversation
  // a track keeps `delivered`: every seq up to it has been emitted, is
  // history from before the client's first conversation list (where it
  // starts), or does not exist in the store. The next seq is emitted at once;
  // a later one waits in `pending` while `sync` fetches the gap. A
  // conversation first seen after the first list starts at 0, whatever seq
  // arrives first. Whether a message was seen is decided by its msgId and by
  // these per-seq records, never by comparing with the highest seq seen.

  _track(sid, start) {
    let t = this._tracks.get(sid);
    if (!t) {
      t = {
        delivered: start,
        pending: new Map(), // seq → {msg, ref, tick}: arrived ahead of a gap
        // msgId → {seq} of emitted messages, newest last; per-message state
        // (such as a change version) belongs in these entries.
        messages: new Map(),
        syncing: null, again: false, retry: null,
        // Message updates: the change cursor (every change up to it was
        // applied or is history), the newest version applied per msgId or
        // hidden range, and the emoji this user reacted with per msgId.
        // early: msgId → the newest state applied before the message was emitted.
        version: 0, versions: new Map(), mine: new Map(), early: new Map(), changing: null, changeAgain: false,
      };
      this._tracks.set(sid, t);
    }
    return t;
  }

  // _applySessions merges a session-list answer. The first one is the
  // baseline: what it shows is history, except what the client received
  // before it. Then every conversation whose lastSeq is ahead of what was
  // emitted is synced. Tracks are never dropped, so a conversation that
  // leaves the list and comes back continues where it was.
  //
  // The list is the user's settings as they are now: pinned, muted and the
  // draft replace this client's, a listed session is shown, and a session
  // known before the request (known: sid → lastSeq then) that the list leaves
  // out was hidden meanwhile (on another device, say, while this one was
  // offline) or left: it is hidden here too until a newer message comes.
  _applySessions(list, known = new Map()) {
    if (!Array.isArray(list)) return;
    list = list.filter((s) => s && typeof s.sid === 'string');
    const baseline = !this._sessionsLoaded;
    this._sessionsLoaded = true;
    const held = this._held;
    this._held = [];
    const lowest = new Map(); // sid → lowest seq received before the baseline
    for (const h of held) {
      const seq = h.msg.seq || 0;
      if (seq > 0 && !(lowest.get(h.sid) <= seq)) lowest.set(h.sid, seq);
    }
    const fresh = new Map();
    for (const s of list) {
      const old = this._sessions.get(s.sid);
      const last = s.lastSeq || 0;
      const next = { ...old, ...s, lastSeq: Math.max(old?.lastSeq || 0, last) };
      if (!s.pinnedAt) delete next.pinnedAt;
      delete next.hidden; // listed: shown
      delete next.hiddenSeq;
      // A list read before pushes that arrived since counts fewer unread
      // than this client already does: its own count is the newer.
      if (old && (old.lastSeq || 0) > last) Object.assign(next, { unread: old.unread, mentionedUnread: old.mentionedUnread, lastMsg: old.lastMsg });
      fresh.set(s.sid, next);
      if (!this._tracks.has(s.sid)) {
        const t = this._track(s.sid, baseline ? Math.max(0, Math.min(last, (lowest.get(s.sid) ?? Infinity) - 1)) : 0);
        // Changes before the first list are in what history shows.
        if (baseline) t.version = s.changeVersion || 0;
      }
    }
    // Keep sessions we learned from pushes that the list does not show yet;
    // those known before the request are hidden (see above).
    for (const [sid, s] of this._sessions) {
      if (fresh.has(sid)) continue;
      const seq = known.get(sid);
      fresh.set(sid, seq !== undefined && (s.lastSeq || 0) <= seq ? { ...s, hidden: true, hiddenSeq: seq } : s);
    }
    this._sessions = fresh;
    for (const h of held) this._ingest(h.sid, h.msg, h.ref);
    for (const s of list) if ((s.lastSeq || 0) > this._tracks.get(s.sid).delivered) this._sync(s.sid);
    for (const s of list) if ((s.changeVersion || 0) > this._tracks.get(s.sid).version) this.syncChanges(s.sid);
    this.emit('conversations', this.conversations());
  }

  // _knownSeqs is each known session's lastSeq, taken before a session-list
  // request (see _applySessions).
  _knownSeqs() {
    return new Map([...this._sessions].map(([sid, s]) => [sid, s.lastSeq || 0]));
  }

  // _ingest takes a message of conversation sid from a push or an ack.
  _ingest(sid, msg, ref) {
    if (!this._sessionsLoaded) { this._held.push({ sid, msg, ref }); return; }
    this._accept(this._track(sid, 0), sid, msg, ref);
  }

  // _accept emits msg if it is next in its conversation, drops it if it was
  // emitted (or is history), and otherwise holds it and fetches the gap.
  _accept(t, sid, msg, ref) {
    if (t.messages.has(msg.msgId)) {
      // Emitted already, in an older state (a sync or history answer is
      // exact, "me" included): what changed since is an update.
      if ((msg.version || 0) > (t.versions.get(msg.msgId) || 0)) this._applyUpdate(sid, msg, 'sync');
      return;
    }
    const seq = msg.seq || 0;
    if (!seq) { this._deliver(t, sid, msg, ref); return; } // chatd always sends seq; once by msgId
    if (seq <= t.delivered) return;
    if (seq === t.delivered + 1) {
      this._deliver(t, sid, msg, ref);
      for (let next = t.pending.get(t.delivered + 1); next; next = t.pending.get(t.delivered + 1)) {
        t.pending.delete(t.delivered + 1);
        this._deliver(t, sid, next.msg, next.ref);
      }
      for (const s of t.pending.keys()) if (s <= t.delivered) t.pending.delete(s);
      return;
    }
    if (!t.pending.has(seq)) t.pending.set(seq, { msg, ref, tick: this._tick });
    this._sync(sid);
  }

  // _skipTo moves `delivered` past a gap that nothing will fill, up to seq;
  // messages held inside it are emitted first, in order.
  _skipTo(t, sid, seq) {
    for (const s of [...t.pending.keys()].sort((a, b) => a - b)) {
      if (s > seq) break;
      const p = t.pending.get(s);
      if (!p) continue; // emitted meanwhile
      t.pending.delete(s);
      if (s > t.delivered) {
        t.delivered = s - 1;
        this._accept(t, sid, p.msg, p.ref);
      }
    }
    if (seq > t.delivered) t.delivered = seq;
  }

  _deliver(t, sid, msg, ref) {
    let m = { ...msg, sid };
    delete m.sendSession;
    // A message's state has a version too: a change applied before it was
    // emitted wins over an older state it arrived with, and what it carries
    // (from sync or history: "me" exact) is the base for later changes.
    const early = t.early.get(m.msgId);
    if (early) {
      t.early.delete(m.msgId);
      if ((early.version || 0) > (m.version || 0)) {
        // Updates carry the whole message; keep only how this one arrived.
        const own = m.own;
        m = { ...early, sid };
        delete m.reaction;
        if (own !== undefined) m.own = own;
      }
    }
    if ((m.version || 0) > (t.versions.get(m.msgId) || 0)) {
      t.versions.set(m.msgId, m.version);
      if (t.versions.size > SEEN_PER_SID) t.versions.delete(t.versions.keys().next().value);
      t.mine.set(m.msgId, new Set((m.reactions || []).filter((r) => r.me).map((r) => r.emoji)));
    }
    // own marks the user's own message pushed from another device or the
    // HTTP API; messages look the same whichever way they arrived.
    const own = m.own === true;
    delete m.own;
    if (own && !this.userId && m.senderUserId) this.userId = String(m.senderUserId);
    const seq = m.seq || 0;
    if (seq > t.delivered) t.delivered = seq;
    t.messages.set(m.msgId, { seq });
    if (t.messages.size > SEEN_PER_SID) {
      // Forget the oldest half: their seqs are at or below delivered, which still keeps them out.
      let n = t.messages.size / 2;
      for (const id of t.messages.keys()) {
        if (n-- <= 0) break;
        t.messages.delete(id);
      }
    }
    let s = this._sessions.get(sid);
    if (!s) {
      s = {
        sid, conversationType: m.conversationType, unread: 0, readSeq: 0,
        targetId: m.conversationType === ConversationType.GROUP ? m.targetId
          : (this.userId && m.senderUserId === this.userId ? m.targetId : m.senderUserId),
        title: ref?.title || '', avatar: ref?.avatar || '',
      };
      this._sessions.set(sid, s);
      // Titles and targets of a new conversation come from the server's list.
      this._refreshSoon();
    }
    if (ref?.title) s.title = ref.title;
    if (ref?.avatar !== undefined && ref?.avatar !== '') s.avatar = ref.avatar;
    const mine = own || (this.userId ? m.senderUserId === this.userId : false);
    // The server's unread already counts messages up to the session's lastSeq.
    if (!mine && seq > (s.lastSeq || 0) && seq > (s.readSeq || 0)) {
      s.unread = (s.unread || 0) + 1;
      if (m.mentionAll || (this.userId && m.mentions?.includes(this.userId))) s.mentionedUnread = (s.mentionedUnread || 0) + 1;
    }
    if (mine) s.readSeq = Math.max(s.readSeq || 0, seq);
    s.lastMsg = { content: previewText(m.content), body: m.content, messageType: m.messageType, date: m.date, msgId: m.msgId, timestamp: m.timestamp };
    s.lastSeq = Math.max(s.lastSeq || 0, seq);
    this.emit('message', m, s);
    this.emit('conversations', this.conversations());
  }

  _refreshSoon() {
    if (this._refreshTimer) return;
    this._refreshTimer = setTimeout(() => {
      this._refreshTimer = null;
      this.refreshConversations().catch((err) => { if (this.state !== 'closed') this.emit('error', err); });
    }, 50);
  }

  // _sync fetches what follows the emitted part of sid, one sync at a time
  // per conversation; a call while one runs makes it go round once more.
  _sync(sid) {
    const t = this._track(sid, 0);
    if (t.syncing) { t.again = true; return t.syncing; }
    t.syncing = this._runSync(t, sid).finally(() => { t.syncing = null; });
    return t.syncing;
  }

  async _runSync(t, sid) {
    try {
      for (;;) {
        t.again = false;
        const tick = ++this._tick; // what arrives from now on is newer than this request
        const page = await this.request('sync', { sid, afterSeq: t.delivered, limit: SYNC_PAGE });
        if (!Array.isArray(page)) throw new ChatdError('sync: malformed answer');
        // The answer's state of a message held behind the gap is at least
        // as new as the one it was held with: emit that one.
        for (const m of page) {
          const p = m && t.pending.get(m.seq);
          if (p && p.msg.msgId === m.msgId && (m.version || 0) >= (p.msg.version || 0)) p.msg = { ...m, own: p.msg.own };
        }
        for (const m of page) {
          if (!m || typeof m.msgId !== 'string') continue;
          // The store answers every seq after afterSeq (at most delivered)
          // that exists, in order: a seq it skipped does not exist for us.
          if ((m.seq || 0) > t.delivered + 1) this._skipTo(t, sid, m.seq - 1);
          this._accept(t, sid, m, m.sendSession);
        }
        if (page.length >= SYNC_PAGE) continue;
        // The answer was complete when the server read it. What was held
        // since before the request and is still beyond a gap is not in the
        // store: nothing will fill that gap.
        let upTo = 0;
        for (const [seq, p] of t.pending) if (p.tick < tick && seq > upTo) upTo = seq;
        if (upTo) this._skipTo(t, sid, upTo);
        for (const s of t.pending.keys()) if (s <= t.delivered) t.pending.delete(s);
        if (!t.again && !t.pending.size) return;
      }
    } catch (err) {
      t.again = false;
      if (this.state === 'closed') return;
      this.emit('error', err);
      // A timeout is tried again; a refusal by the server waits for the next list.
      if (!err.status) t.retry = setTimeout(() => this._sync(sid), SYNC_RETRY);
    }
  }
}

// isMessage tells a message with the receiver's session (a push or a send's
// ack) from anything malformed.
function isMessage(d) {
  return !!d && typeof d.msgId === 'string' && !!d.sendSession && typeof d.sendSession.sid === 'string' && d.sendSession.sid !== '';
}

// previewText is a session's lastMsg.content as chatd lists it: the
// content's inner text when it is a string, else "".
function previewText(content) {
  return typeof content?.content === 'string' ? content.content : '';
}

// visible: not hidden, or a message came after the hide.
function visible(s) { return !s.hidden || (s.lastSeq || 0) > (s.hiddenSeq || 0); }

function lastTime(s) {
  return s.lastMsg?.timestamp || (s.lastMsg?.date ? Date.parse(s.lastMsg.date) || 0 : 0);
}

// pick copies the listed keys; alt names a key that stands for url.
function pick(obj, keys, alt) {
  const out = {};
  for (const k of keys) if (obj && obj[k] !== undefined) out[k] = obj[k];
  if (out.url === undefined && obj && obj[alt] !== undefined) out.url = obj[alt];
  return out;
}

// ChatClient mirrors node-chat's SDK names over ChatdClient so that apps
// written for node-chat switch by changing the import. Methods return
// promises and also call a trailing node-style callback (err, data).
export class ChatClient {
  constructor(appId, token, host, options = {}) {
    this.client = new ChatdClient({ ...options, url: host, appId, token });
  }

  init(cb) { return callback(this.client.connect(), cb); }
  close() { this.client.close(); }

  getMessageSessions(cb) { return callback(this.client.request('session-list'), cb); }

  // getSessionMessages(sid, limit?, lastmsgId?) or (sid, {limit, lastmsgId});
  // newest first, as node-chat returns them.
  getSessionMessages(sid, limit, lastmsgId, cb) {
    if (typeof limit === 'function') { cb = limit; limit = undefined; }
    if (typeof lastmsgId === 'function') { cb = lastmsgId; lastmsgId = undefined; }
    if (limit && typeof limit === 'object') ({ limit, lastmsgId } = limit);
    const arg = { sid };
    if (limit) arg.limit = limit;
    if (lastmsgId) arg.lastmsgId = lastmsgId;
    return callback(this.client.request('session-message-list', arg), cb);
  }

  // sendPrivateMessage(targetId, messageType, content) or ({targetId, messageType, content}).
  sendPrivateMessage(...a) { return this._send(false, a); }
  sendGroupMessage(...a) { return this._send(true, a); }

  _send(group, a) {
    const cb = typeof a[a.length - 1] === 'function' ? a.pop() : undefined;
    const m = a[0] && typeof a[0] === 'object' ? a[0] : { targetId: a[0], messageType: a[1], content: a[2] };
    let content = m.content;
    if (typeof content === 'string') {
      try { content = JSON.parse(content); } catch { content = { content }; }
    }
    return callback(this.client.send(m.targetId, Number(m.messageType) || MessageType.TEXT, content,
      { group, clientMsgId: m.clientMsgId || newClientMsgId() }), cb);
  }

  setMessageSessionRead(sid, cb) { return callback(this.client.markRead(sid).then(() => []), cb); }

  uploadFile(file, onProgress, cb) {
    if (typeof onProgress === 'function' && cb === undefined && onProgress.length >= 2) { cb = onProgress; onProgress = undefined; }
    return callback(this.client.upload(file, { onProgress }), cb);
  }

  onConnected(fn) { return this.client.on('connect', fn); }
  // fn gets node-chat's push envelope {message, status, data, type}.
  onMessage(fn) {
    return this.client.on('message', (m, s) => fn({ message: '', status: 1, data: { ...m, sendSession: { sid: s.sid, title: s.title, avatar: s.avatar } }, type: 'user' }));
  }
  onError(fn) { return this.client.on('error', fn); }
  onDisconnected(fn) { return this.client.on('disconnect', fn); }
}

function callback(p, cb) {
  if (typeof cb === 'function') p.then((d) => cb(null, d), (e) => cb(e));
  return p;
}

export default ChatdClient;

// --- groups and profiles (docs/groups.md) ---
//
// Members read their groups and leave them; owners and admins add, remove
// and update where the app allows it. Group events arrive as messages of
// type MessageType.NOTICE whose content is {content: text, event, groupId,
// userIds?, …}; a user who leaves a group gets a 'groupEvent' instead.
Object.assign(ChatdClient.prototype, {
  groupInfo(groupId) { return this.request('group-info', { groupId: String(groupId) }); },
  // groupMembers resolves with {members, cursor}; pass cursor back for the next page.
  groupMembers(groupId, { limit, cursor } = {}) {
    const arg = { groupId: String(groupId) };
    if (limit) arg.limit = limit;
    if (cursor) arg.cursor = cursor;
    return this.request('group-members', arg);
  },
  myGroups() { return this.request('my-groups'); },
  async leaveGroup(groupId) {
    await this.request('group-leave', { groupId: String(groupId) });
    this._dropGroup(String(groupId));
  },
  addGroupMembers(groupId, userIds) { return this.request('group-add', { groupId: String(groupId), userIds: userIds.map(String) }); },
  removeGroupMembers(groupId, userIds) { return this.request('group-remove', { groupId: String(groupId), userIds: userIds.map(String) }); },
  // updateGroup changes {name?, avatarUri?, notice?, extra?}; resolves with the group.
  updateGroup(groupId, changes) { return this.request('group-update', { ...changes, groupId: String(groupId) }); },
  userInfo(userIds) { return this.request('user-info', { userIds: userIds.map(String) }); },
  _onGroupEvent(e) {
    if (!e || typeof e.groupId !== 'string') return;
    this.emit('groupEvent', e);
    this._dropGroup(e.groupId);
  },
  // _dropGroup forgets the conversation of a group the user left: its
  // session is gone on the server.
  _dropGroup(groupId) {
    let changed = false;
    for (const [sid, s] of this._sessions) {
      if (s.conversationType === ConversationType.GROUP && s.targetId === groupId) {
        this._sessions.delete(sid);
        this._tracks.delete(sid);
        changed = true;
      }
    }
    if (changed) this.emit('conversations', this.conversations());
  },
});
