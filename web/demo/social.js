// The demo's presence, typing, read marks and conversation settings: online
// dots, "typing…", ✓/✓✓ in 1:1, "read by N" in groups with the readers, and
// the conversation menu (pin, mute, hide). Content goes in with textContent.

// ctx is the app's: {state, el, $, renderConversations, renderMessages, showError}.
let ctx = null;
const online = new Map(); // userId → bool
const watched = new Set();
const readers = new Map(); // msgId → {readCount, memberCount, readers?}
let openMenu = null; // sid whose menu is open

export function installSocial(c, app) {
  ctx = app;
  online.clear();
  watched.clear();
  readers.clear();
  c.on('presence', (p) => { online.set(p.userId, p.online); ctx.renderConversations(); header(); });
  c.on('typing', (t) => { if (ctx.state.active?.sid === t.sid) typingLine(); });
  c.on('read-receipt', (r) => { if (ctx.state.active?.sid === r.sid) ctx.renderMessages(false); });
  c.on('read-receipts', (r) => { if (ctx.state.active?.sid === r.sid) refreshReaders(true); });
  c.on('conversations', watchPeers);
}

// watchPeers subscribes to the presence of every private peer not yet watched.
function watchPeers(list) {
  const fresh = list.filter((s) => s.conversationType === 1 && s.targetId !== ctx.state.me.userId && !watched.has(s.targetId)).map((s) => s.targetId);
  if (!fresh.length) return;
  for (const u of fresh) watched.add(u);
  ctx.state.client.subscribePresence(fresh).then((states) => {
    for (const s of states || []) online.set(s.userId, s.online);
    ctx.renderConversations();
    header();
  }, () => { for (const u of fresh) watched.delete(u); });
}

// conversationExtras: the online dot, pinned and muted marks, and the menu.
export function conversationExtras(s) {
  const { el } = ctx;
  const out = [];
  if (s.conversationType === 1 && online.has(s.targetId)) {
    out.push(el('span', { class: 'dot' + (online.get(s.targetId) ? ' on' : ''), 'data-testid': 'online-dot', 'data-online': String(!!online.get(s.targetId)), title: online.get(s.targetId) ? 'online' : 'offline' }));
  }
  if (s.pinned) out.push(el('span', { class: 'mark', 'data-testid': 'pinned', title: 'pinned' }, '📌'));
  if (s.muted) out.push(el('span', { class: 'mark', 'data-testid': 'muted', title: 'muted' }, '🔕'));
  const more = el('button', { type: 'button', class: 'conv-more link', 'data-testid': 'conv-menu', 'aria-label': 'Conversation menu', 'aria-expanded': String(openMenu === s.sid) }, '⋯');
  more.addEventListener('click', (e) => { e.stopPropagation(); openMenu = openMenu === s.sid ? null : s.sid; ctx.renderConversations(); });
  out.push(more);
  if (openMenu === s.sid) {
    const c = ctx.state.client;
    const item = (label, testid, fn) => {
      const b = el('button', { type: 'button', 'data-testid': testid }, label);
      b.addEventListener('click', (e) => { e.stopPropagation(); openMenu = null; fn().catch(ctx.showError); });
      return b;
    };
    out.push(el('span', { class: 'conv-menu', role: 'menu', 'data-testid': 'conv-menu-items' },
      item(s.pinned ? 'Unpin' : 'Pin', 'conv-pin', () => c.pin(s.sid, !s.pinned)),
      item(s.muted ? 'Unmute' : 'Mute', 'conv-mute', () => c.mute(s.sid, !s.muted)),
      item('Hide', 'conv-hide', () => c.hide(s.sid))));
  }
  return out;
}

// receiptMark: ✓ (sent) or ✓✓ (seen) on one's own 1:1 messages; "read by N"
// on one's own group messages, which lists the readers when clicked.
export function receiptMark(m, mine) {
  const { el, state } = ctx;
  const conv = state.active;
  if (!mine || !conv?.sid || !m.seq) return null;
  if (!conv.group) {
    const seen = (state.client.conversation(conv.sid)?.peerReadSeq || 0) >= m.seq;
    return el('span', { class: 'tick' + (seen ? ' seen' : ''), 'data-testid': 'tick', 'data-seen': String(seen), title: seen ? 'seen' : 'sent' }, seen ? '✓✓' : '✓');
  }
  const r = readers.get(m.msgId);
  const n = Math.max(r?.readCount || 0, state.client.readCount(conv.sid, m.seq));
  const b = el('button', { type: 'button', class: 'link read-by', 'data-testid': 'read-by', 'data-count': String(n) }, `read by ${n}`);
  b.addEventListener('click', async (e) => {
    e.stopPropagation();
    try {
      const got = await state.client.messageReaders(conv.sid, m.msgId);
      readers.set(m.msgId, { ...got, open: true });
      ctx.renderMessages(false);
    } catch (err) { ctx.showError(err); }
  });
  const box = el('span', { class: 'read-box' }, b);
  if (r?.open && r.readers) {
    box.append(el('span', { class: 'readers', 'data-testid': 'readers' }, r.readers.map((x) => x.userId).join(', ') || 'nobody yet'));
  }
  return box;
}

// refreshReaders asks for the readers of one's newest group messages (five
// at most) once, or again after read-receipts.
function refreshReaders(force) {
  const { state } = ctx;
  const conv = state.active;
  if (!conv?.group || !conv.sid) return;
  const v = state.views.get(conv.sid);
  if (!v) return;
  const mine = [...v.msgs.values()].filter((m) => m.senderUserId === state.me.userId && m.seq).sort((a, b) => b.seq - a.seq).slice(0, 5);
  for (const m of mine) {
    if (!force && readers.has(m.msgId)) continue;
    state.client.messageReaders(conv.sid, m.msgId).then((got) => {
      readers.set(m.msgId, { ...got, open: readers.get(m.msgId)?.open });
      if (state.active === conv) ctx.renderMessages(false);
    }, () => {});
  }
}

// onOpen runs when a conversation is shown.
export function onOpen() {
  header();
  typingLine();
  refreshReaders(false);
}

// onInput tells the others this user is typing (the SDK throttles).
export function onInput() {
  const sid = ctx.state.active?.sid;
  if (sid) ctx.state.client.typing(sid);
}

function header() {
  const { $, el, state } = ctx;
  const conv = state.active;
  let dot = $('chat-online');
  if (!dot) {
    dot = el('span', { id: 'chat-online', class: 'dot', 'data-testid': 'chat-online' });
    $('chat-title').after(dot);
  }
  const known = conv && !conv.group && online.has(conv.targetId);
  dot.hidden = !known;
  if (known) {
    dot.className = 'dot' + (online.get(conv.targetId) ? ' on' : '');
    dot.dataset.online = String(online.get(conv.targetId));
  }
}

function typingLine() {
  const { $, el, state } = ctx;
  let line = $('typing');
  if (!line) {
    line = el('div', { id: 'typing', class: 'typing', 'data-testid': 'typing', 'aria-live': 'polite' });
    $('composer').before(line);
  }
  const sid = state.active?.sid;
  const who = sid ? state.client.typingUsers(sid) : [];
  line.textContent = who.length ? `${who.join(', ')} ${who.length > 1 ? 'are' : 'is'} typing…` : '';
  line.hidden = !who.length;
}
