// The chatd demo chat, built on the JS SDK. Every piece of user content is
// put into the page with textContent or as a checked URL, never as markup.
import { ChatdClient, MessageType, ConversationType, newClientMsgId } from '/sdk/chatd.js';
import { installSocial, conversationExtras, receiptMark, onOpen, onInput } from '/demo/social.js';
import { initSearch } from './search.js';

const $ = (id) => document.getElementById(id);
const SUGGESTED = ['alice', 'bob', 'carol', 'dave'];
const PAGE = 20;

// el builds an element; attrs are set as attributes (constant names only)
// and children are nodes or text.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v; else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// safeURL accepts http(s) URLs and same-origin paths only.
function safeURL(u) {
  if (typeof u !== 'string' || !u) return null;
  try {
    const url = new URL(u, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch { return null; }
}

async function post(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  let out;
  try { out = await res.json(); } catch { throw new Error(`HTTP ${res.status}`); }
  if (out.status !== 1) throw new Error(out.message || `HTTP ${res.status}`);
  return out.data;
}

const state = {
  client: null,
  me: null, // {appId, userId, token}
  active: null, // {sid, targetId, group, title}
  views: new Map(), // sid → {msgs: Map msgId → message, done, loading}
  pending: new Map(), // clientMsgId → element
  replyTo: null, // the message being answered
  editing: null, // the message being edited
  roles: new Map(), // groupId → my role there (owner, admin, member)
};
const REACTIONS = ['👍', '❤️', '😂'];

// --- login ---

function recentNames() {
  try { return JSON.parse(localStorage.getItem('chatd-demo-recent') || '[]').filter((x) => typeof x === 'string'); } catch { return []; }
}

function remember(name) {
  const list = [name, ...recentNames().filter((n) => n !== name)].slice(0, 6);
  try { localStorage.setItem('chatd-demo-recent', JSON.stringify(list)); } catch { /* private mode */ }
}

function showLogin() {
  $('app').hidden = true;
  $('login').hidden = false;
  const chips = $('login-suggestions');
  chips.replaceChildren();
  for (const n of [...new Set([...recentNames(), ...SUGGESTED])].slice(0, 8)) {
    const b = el('button', { type: 'button', 'data-name': n }, n);
    b.addEventListener('click', () => { $('login-name').value = n; login(n); });
    chips.append(b);
  }
  $('login-name').focus();
}

async function login(name) {
  $('login-error').textContent = '';
  try {
    const me = await post('/demo/token', { userId: name });
    sessionStorage.setItem('chatd-demo-user', me.userId);
    remember(me.userId);
    await start(me);
  } catch (err) {
    $('login-error').textContent = err.message;
  }
}

function logout() {
  state.client?.close();
  state.client = null;
  state.active = null;
  state.views.clear();
  sessionStorage.removeItem('chatd-demo-user');
  $('messages').replaceChildren();
  $('conversations').replaceChildren();
  showLogin();
}

// --- the chat ---

async function start(me) {
  state.me = me;
  $('login').hidden = true;
  $('app').hidden = false;
  $('me-name').textContent = me.userId;
  const c = new ChatdClient({ url: location.origin, appId: me.appId, token: me.token, userId: me.userId });
  state.client = c;
  c.on('state', setStatus);
  c.on('conversations', renderConversations);
  c.on('message', onMessage);
  c.on('message-updated', onUpdated);
  c.on('error', (err) => console.warn('chatd:', err));
  c.on('groupEvent', onGroupEvent);
  installSocial(c, { state, el, $, renderConversations, renderMessages: (toBottom) => state.active?.sid && renderMessages(toBottom), showError });
  setStatus(c.state);
  await c.connect();
}

function setStatus(s) {
  const st = $('status');
  st.dataset.state = s;
  st.textContent = { connected: 'online', connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'offline', idle: 'offline' }[s] || s;
}

function preview(m) {
  if (!m) return '';
  const c = m.body || {};
  switch (m.messageType) {
    case MessageType.TEXT: return String(c.content ?? '');
    case MessageType.IMAGE: return '[image]';
    case MessageType.FILE: return '[file] ' + String(c.name ?? '');
    case MessageType.LOCATION: return '[location]';
    case MessageType.VOICE: return '[voice]';
    case MessageType.NOTICE: return String(c.content ?? '');
    default: return '[message]';
  }
}

function renderConversations() {
  const c = state.client;
  if (!c) return;
  const list = $('conversations');
  const items = c.conversations().map((s) => {
    const title = s.title || s.targetId;
    const li = el('li', {
      class: 'conv' + (state.active?.sid === s.sid ? ' active' : ''), tabindex: 0, role: 'button',
      'data-sid': s.sid, 'data-target': s.targetId, 'data-testid': 'conversation',
    },
    el('span', { class: 'title' }, s.conversationType === ConversationType.GROUP ? '# ' + title : title),
    el('span', { class: 'preview' }, s.mentionedUnread > 0 ? el('strong', { class: 'at-me', 'data-testid': 'at-me' }, '[@me] ') : null,
      s.lastMsg?.recalled ? 'message recalled' : preview(s.lastMsg)),
    s.unread > 0 ? el('span', { class: 'badge' + (s.muted ? ' muted' : ''), 'data-testid': 'unread' }, s.unread > 99 ? '99+' : s.unread) : null,
    el('span', { class: 'extras' }, ...conversationExtras(s)));
    const open = () => openConversation({ sid: s.sid, targetId: s.targetId, group: s.conversationType === ConversationType.GROUP, title });
    li.addEventListener('click', open);
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
    return li;
  });
  list.replaceChildren(...items);
}

function view(sid) {
  let v = state.views.get(sid);
  if (!v) { v = { msgs: new Map(), done: false, loading: false }; state.views.set(sid, v); }
  return v;
}

// openConversation shows conv: its newest page, or with atSeq (a search
// hit) the page around that message, marked and scrolled to.
async function openConversation(conv, atSeq) {
  state.active = conv;
  clearCompose();
  $('app').classList.add('show-chat');
  $('chat-title').textContent = conv.group ? '# ' + conv.title : conv.title;
  $('composer').hidden = false;
  $('messages').replaceChildren();
  $('group-info-toggle').hidden = !conv.group;
  closeGroupPanel();
  renderConversations();
  onOpen();
  $('composer').dataset.groupRole = '';
  if (conv.group) refreshRole(conv);
  if (!conv.sid) return; // a new chat: the first message creates it
  const v = view(conv.sid);
  v.msgs.clear();
  v.done = false;
  try {
    const page = await state.client.history(conv.sid, atSeq ? { limit: PAGE, around: atSeq } : { limit: PAGE });
    if (state.active !== conv) return;
    for (const m of page) v.msgs.set(m.msgId, m);
    v.done = !atSeq && page.length < PAGE;
    state.hit = atSeq ? { sid: conv.sid, seq: Number(atSeq) } : null;
    renderMessages(!atSeq);
    if (atSeq) {
      $('messages').querySelector('.msg.hit')?.scrollIntoView({ block: 'center' });
      return;
    }
    markReadIfVisible();
    fillIfShort();
    onOpen();
  } catch (err) {
    showError(err);
  }
  $('text').focus();
}

async function loadOlder() {
  const conv = state.active;
  if (!conv?.sid) return;
  const v = view(conv.sid);
  if (v.done || v.loading || !v.msgs.size) return;
  v.loading = true;
  const box = $('messages');
  const oldest = sorted(v)[0];
  try {
    const page = await state.client.history(conv.sid, { limit: PAGE, before: oldest.msgId });
    if (state.active !== conv) return;
    const fromBottom = box.scrollHeight - box.scrollTop;
    for (const m of page) v.msgs.set(m.msgId, m);
    v.done = page.length < PAGE;
    renderMessages(false);
    box.scrollTop = box.scrollHeight - fromBottom; // keep the reader's place
  } catch (err) {
    showError(err);
  } finally {
    v.loading = false;
  }
  fillIfShort();
}

// fillIfShort loads older pages while the list is too short to scroll.
function fillIfShort() {
  const box = $('messages');
  const v = state.active?.sid && view(state.active.sid);
  if (v && !v.done && box.scrollHeight <= box.clientHeight + 10) loadOlder();
}

function sorted(v) { return [...v.msgs.values()].sort((a, b) => (a.seq || 0) - (b.seq || 0)); }

function renderMessages(toBottom) {
  const conv = state.active;
  const box = $('messages');
  const v = view(conv.sid);
  const nodes = sorted(v).map(messageNode);
  if (v.done) nodes.unshift(el('li', { class: 'older' }, 'start of the conversation'));
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  box.replaceChildren(...nodes, ...[...state.pending.values()].filter((p) => p.dataset.sid === conv.sid || p.dataset.target === conv.targetId));
  if (state.hit?.sid === conv.sid) box.querySelector(`[data-seq="${state.hit.seq}"]`)?.classList.add('hit'); // a search hit (search.js)
  if (toBottom || nearBottom) box.scrollTop = box.scrollHeight;
}

function messageNode(m) {
  if (m.messageType === MessageType.NOTICE) {
    return el('li', { class: 'msg notice', 'data-msg-id': m.msgId, 'data-seq': m.seq, 'data-testid': 'notice' }, String(m.content?.content ?? ''));
  }
  const mine = m.senderUserId === state.me.userId;
  const c = m.content || {};
  const body = [];
  const url = safeURL(c.url);
  switch (m.messageType) {
    case MessageType.TEXT:
      body.push(el('span', { class: 'text' }, String(c.content ?? '')));
      break;
    case MessageType.IMAGE:
      if (url) body.push(el('img', { src: url, alt: String(c.name || 'image'), class: 'msg-image', loading: 'lazy' }));
      else body.push(el('span', { class: 'text' }, '[image]'));
      break;
    case MessageType.FILE:
      body.push(url ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, String(c.name || 'file')) : el('span', {}, '[file]'));
      break;
    case MessageType.LOCATION:
      body.push(el('span', { class: 'text' }, `📍 ${Number(c.latitude)}, ${Number(c.longitude)} ${String(c.name ?? '')}`));
      break;
    default:
      body.push(el('span', { class: 'text' }, JSON.stringify(c)));
  }
  if (m.recalled) body.splice(0, body.length, el('span', { class: 'recalled', 'data-testid': 'recalled' }, 'message recalled'));
  const when = m.timestamp ? new Date(m.timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
  const q = m.quote;
  return el('li', { class: 'msg' + (mine ? ' mine' : ''), 'data-msg-id': m.msgId, 'data-seq': m.seq, 'data-testid': 'message' },
    state.active?.group && !mine ? el('span', { class: 'who' }, m.sendUser?.name || m.senderUserId) : null,
    q ? el('span', { class: 'quote', 'data-testid': 'quote' }, (q.sendUser?.name || q.senderUserId) + ': ' + (q.recalled ? 'message recalled' : (q.excerpt || '[message]'))) : null,
    ...body,
    m.reactions?.length ? el('span', { class: 'reactions' }, ...m.reactions.map((r) => {
      const b = el('button', { type: 'button', class: 'reaction' + (r.me ? ' me' : ''), 'data-testid': 'reaction', 'data-emoji': r.emoji }, `${r.emoji} ${r.count}`);
      b.addEventListener('click', () => react(m, r.emoji, !r.me));
      return b;
    })) : null,
    el('span', { class: 'when' }, m.editCount && !m.recalled ? el('span', { 'data-testid': 'edited' }, 'edited · ') : null, when, ' ', receiptMark(m, mine)),
    m.recalled ? null : actions(m, mine));
}

// actions is the message's menu: reply, react, and for one's own text
// messages edit and recall; delete (for me) on every message.
function actions(m, mine) {
  const bar = el('span', { class: 'actions' });
  const add = (label, testid, fn) => {
    const b = el('button', { type: 'button', 'data-testid': testid, title: label }, label);
    b.addEventListener('click', (e) => { e.stopPropagation(); fn(); });
    bar.append(b);
  };
  add('↩', 'action-reply', () => startReply(m));
  for (const e of REACTIONS) add(e, 'action-react', () => react(m, e, !m.reactions?.some((r) => r.emoji === e && r.me)));
  if (mine && m.messageType === MessageType.TEXT) add('✎', 'action-edit', () => startEdit(m));
  if (mine) add('⟲', 'action-recall', () => state.client.recall(m.sid || state.active.sid, m.msgId).catch(showError));
  add('🗑', 'action-delete', () => state.client.deleteForMe(m.sid || state.active.sid, m.msgId).catch(showError));
  return bar;
}

function react(m, emoji, on) {
  const sid = m.sid || state.active.sid;
  (on ? state.client.react(sid, m.msgId, emoji) : state.client.unreact(sid, m.msgId, emoji)).catch(showError);
}

function banner() {
  let b = $('compose-banner');
  if (!b) {
    b = el('div', { id: 'compose-banner', class: 'banner', 'data-testid': 'compose-banner', hidden: true });
    $('composer').before(b);
  }
  return b;
}

function showBanner(text) {
  const b = banner();
  const cancel = el('button', { type: 'button', class: 'link', 'data-testid': 'banner-cancel' }, '✕');
  cancel.addEventListener('click', clearCompose);
  b.replaceChildren(el('span', {}, text), cancel);
  b.hidden = false;
  $('text').focus();
}

function startReply(m) {
  state.editing = null;
  state.replyTo = m;
  showBanner('Replying to ' + (m.sendUser?.name || m.senderUserId) + ': ' + preview({ body: m.content, messageType: m.messageType }));
}

function startEdit(m) {
  state.replyTo = null;
  state.editing = m;
  $('text').value = String(m.content?.content ?? '');
  showBanner('Editing your message');
}

function clearCompose() {
  state.replyTo = null;
  state.editing = null;
  banner().hidden = true;
}

// canMentionAll: only a group's owner and admins may mention everyone
// (docs/groups.md); the role comes from group-info, asked when the group is
// opened and again when an admins or owner event arrives.
function canMentionAll(conv) {
  const role = state.roles.get(conv.targetId);
  return role === 'owner' || role === 'admin';
}

async function refreshRole(conv) {
  try {
    const g = await state.client.groupInfo(conv.targetId);
    state.roles.set(conv.targetId, g.role);
  } catch {
    state.roles.delete(conv.targetId); // no longer a member: no @all
  }
  if (state.active !== conv) return;
  $('composer').dataset.groupRole = state.roles.get(conv.targetId) || '';
  suggestMentions();
}

// suggestMentions offers the group's known members (everyone seen sending
// here), and "all" to owners and admins, while the word being typed starts
// with @.
function suggestMentions() {
  let box = $('mention-suggest');
  if (!box) {
    box = el('div', { id: 'mention-suggest', class: 'suggest', 'data-testid': 'mention-suggest', hidden: true });
    $('composer').before(box);
  }
  const conv = state.active;
  const input = $('text');
  const upto = input.value.slice(0, input.selectionStart ?? input.value.length);
  const m = /(^|\s)@([^\s@]*)$/.exec(upto);
  if (!conv?.group || !m) { box.hidden = true; return; }
  const known = [...new Set([...view(conv.sid || '').msgs.values()].map((x) => x.senderUserId))].filter((u) => u !== state.me.userId);
  const names = [...known.sort(), ...(canMentionAll(conv) ? ['all'] : [])].filter((n) => n.startsWith(m[2])).slice(0, 8);
  if (!names.length) { box.hidden = true; return; }
  box.replaceChildren(...names.map((n) => {
    const b = el('button', { type: 'button', class: 'link', 'data-testid': 'mention-option', 'data-name': n }, '@' + n);
    b.addEventListener('click', () => {
      const start = upto.length - m[2].length;
      input.value = input.value.slice(0, start) + n + ' ' + input.value.slice(upto.length);
      box.hidden = true;
      input.focus();
    });
    return b;
  }));
  box.hidden = false;
}

// onUpdated applies a recall, edit, reaction or delete to the open view;
// replies quoting a recalled message show it as recalled.
function onUpdated(u) {
  const v = state.views.get(u.sid);
  if (!v) return;
  if (u.deleted) {
    for (const [id, m] of v.msgs) if (m.seq >= u.fromSeq && m.seq <= u.toSeq) v.msgs.delete(id);
  } else {
    if (v.msgs.has(u.msgId)) v.msgs.set(u.msgId, { ...v.msgs.get(u.msgId), ...u });
    if (u.recalled) {
      for (const [id, m] of v.msgs) if (m.quote?.msgId === u.msgId) v.msgs.set(id, { ...m, quote: { ...m.quote, recalled: true, excerpt: '' } });
    }
  }
  if (state.active?.sid === u.sid) renderMessages(false);
}

function onMessage(m) {
  const p = m.clientMsgId && state.pending.get(m.clientMsgId);
  if (p) { state.pending.delete(m.clientMsgId); p.remove(); }
  const conv = state.active;
  if (!conv) return;
  const opens = conv.group ? m.targetId === conv.targetId
    : m.conversationType === ConversationType.PRIVATE && (m.senderUserId === conv.targetId || (m.senderUserId === state.me.userId && m.targetId === conv.targetId));
  if (!conv.sid && opens) {
    conv.sid = m.sid; // the first message of a new chat created it
    view(m.sid).done = true;
  }
  if (conv.sid !== m.sid) return;
  const v = view(m.sid);
  if (v.msgs.has(m.msgId)) return;
  v.msgs.set(m.msgId, m);
  renderMessages(m.senderUserId === state.me.userId);
  markReadIfVisible();
  if (m.messageType === MessageType.NOTICE && ['admins', 'owner'].includes(m.content?.event)) refreshRole(conv);
  if (m.messageType === MessageType.NOTICE && !$('group-panel').hidden) renderGroupPanel();
}

function markReadIfVisible() {
  const conv = state.active;
  if (!conv?.sid || document.visibilityState !== 'visible') return;
  const s = state.client.conversation(conv.sid);
  if (s && s.unread > 0) state.client.markRead(conv.sid).catch(showError);
}

function showError(err) {
  $('app-error').textContent = err?.message || String(err);
  setTimeout(() => { $('app-error').textContent = ''; }, 5000);
}

// pendingNode shows a message being sent until its ack turns it into the real one.
function pendingNode(conv, text, clientMsgId) {
  const li = el('li', { class: 'msg mine pending', 'data-testid': 'pending' }, el('span', { class: 'text' }, text));
  li.dataset.sid = conv.sid || '';
  li.dataset.target = conv.targetId;
  state.pending.set(clientMsgId, li);
  $('messages').append(li);
  $('messages').scrollTop = $('messages').scrollHeight;
  return li;
}

async function sendText(e) {
  e.preventDefault();
  const conv = state.active;
  const input = $('text');
  const text = input.value;
  if (!conv || !text.trim()) return;
  input.value = '';
  suggestMentions();
  if (state.editing) {
    const m = state.editing;
    clearCompose();
    try { await state.client.edit(conv.sid, m.msgId, text); } catch (err) { showError(err); }
    return;
  }
  const replyTo = state.replyTo?.msgId;
  clearCompose();
  // @name of someone seen in this group mentions them; @all everyone (owners
  // and admins; from a member it stays plain text).
  const opts = { group: conv.group, replyTo };
  if (conv.group) {
    const known = new Set([...view(conv.sid || '').msgs.values()].map((m) => m.senderUserId));
    const names = [...text.matchAll(/@([^\s@]+)/g)].map((x) => x[1]);
    opts.mentions = [...new Set(names.filter((n) => known.has(n) && n !== state.me.userId))];
    opts.mentionAll = names.includes('all') && canMentionAll(conv);
  }
  const clientMsgId = newClientMsgId();
  opts.clientMsgId = clientMsgId;
  pendingNode(conv, text, clientMsgId);
  try {
    await state.client.sendText(conv.targetId, text, opts);
  } catch (err) {
    showError(err);
  } finally {
    state.pending.get(clientMsgId)?.remove();
    state.pending.delete(clientMsgId);
  }
}

async function sendImage() {
  const conv = state.active;
  const input = $('image-input');
  const file = input.files?.[0];
  input.value = '';
  if (!conv || !file) return;
  const bar = $('upload-progress');
  bar.hidden = false;
  bar.value = 0;
  try {
    const up = await state.client.upload(file, { onProgress: (p) => { if (p.total) bar.value = p.loaded / p.total; } });
    await state.client.sendImage(conv.targetId, { ...up, url: up.fullUrl, name: file.name }, { group: conv.group });
  } catch (err) {
    showError(err);
  } finally {
    bar.hidden = true;
  }
}

async function newChat(e) {
  e.preventDefault();
  const name = $('new-chat-name').value.trim();
  if (!name) return;
  try {
    const { userId } = await post('/demo/user', { token: state.me.token, userId: name });
    $('new-chat-name').value = '';
    $('new-chat-box').open = false;
    const existing = state.client.conversations().find((s) => s.conversationType === ConversationType.PRIVATE && s.targetId === userId);
    openConversation({ sid: existing?.sid || null, targetId: userId, group: false, title: existing?.title || userId });
  } catch (err) {
    showError(err);
  }
}

async function newGroup(e) {
  e.preventDefault();
  const name = $('new-group-name').value.trim();
  const members = $('new-group-members').value.split(',').map((s) => s.trim()).filter(Boolean);
  if (!name) return;
  try {
    const g = await post('/demo/group', { token: state.me.token, name, userIds: members });
    $('new-group-name').value = '';
    $('new-group-members').value = '';
    $('new-group-box').open = false;
    const list = await state.client.refreshConversations();
    const s = list.find((x) => x.targetId === g.groupId);
    openConversation({ sid: s?.sid || null, targetId: g.groupId, group: true, title: g.name });
  } catch (err) {
    showError(err);
  }
}

// --- the group panel: members with roles, rename, notice, add/remove, mute, leave, dismiss ---

function closeGroupPanel() {
  $('group-panel').hidden = true;
  $('group-info-toggle').setAttribute('aria-expanded', 'false');
}

async function toggleGroupPanel() {
  if (!$('group-panel').hidden) { closeGroupPanel(); return; }
  $('group-panel').hidden = false;
  $('group-info-toggle').setAttribute('aria-expanded', 'true');
  await renderGroupPanel();
}

async function renderGroupPanel() {
  const conv = state.active;
  if (!conv?.group) return;
  try {
    const [g, page] = await Promise.all([state.client.groupInfo(conv.targetId), state.client.groupMembers(conv.targetId, { limit: 200 })]);
    if (state.active !== conv) return;
    state.roles.set(conv.targetId, g.role);
    $('composer').dataset.groupRole = g.role;
    const manager = g.role === 'owner' || g.role === 'admin';
    const rank = { member: 0, admin: 1, owner: 2 };
    // What the user is typing stays.
    if (document.activeElement !== $('group-name')) $('group-name').value = g.name;
    if (document.activeElement !== $('group-notice')) $('group-notice').value = g.notice;
    for (const id of ['group-rename', 'group-notice-form', 'group-add']) $(id).hidden = !manager;
    $('group-mute-all').hidden = !manager;
    $('group-mute-all').textContent = g.muteAll ? 'Unmute all' : 'Mute all';
    $('group-mute-all').dataset.on = g.muteAll ? '1' : '';
    $('group-dismiss').hidden = g.role !== 'owner';
    $('group-members').replaceChildren(...page.members.map((m) => {
      const li = el('li', { 'data-testid': 'member', 'data-user': m.userId, 'data-role': m.role },
        el('span', { class: 'name' }, m.name || m.userId),
        el('span', { class: 'role' }, m.role + (m.mutedUntil ? ' · muted' : '')));
      if (manager && rank[m.role] < rank[g.role]) {
        const mute = el('button', { type: 'button', 'data-testid': 'member-mute' }, m.mutedUntil ? 'Unmute' : 'Mute');
        mute.addEventListener('click', () => groupAction(m.mutedUntil ? 'unmute' : 'mute', [m.userId]));
        const rm = el('button', { type: 'button', class: 'danger', 'data-testid': 'member-remove' }, 'Remove');
        rm.addEventListener('click', () => run(() => state.client.removeGroupMembers(conv.targetId, [m.userId])));
        li.append(mute, rm);
      }
      if (g.role === 'owner' && m.role !== 'owner') {
        const admin = m.role === 'admin';
        const b = el('button', { type: 'button', 'data-testid': 'member-admin' }, admin ? 'Remove admin' : 'Make admin');
        b.addEventListener('click', () => groupAction(admin ? 'unadmin' : 'admin', [m.userId]));
        li.append(b);
      }
      return li;
    }));
  } catch (err) {
    showError(err);
  }
}

// run does a group change, then shows the panel as it now is.
async function run(fn) {
  try {
    await fn();
  } catch (err) {
    showError(err);
  }
  if (state.active?.group && !$('group-panel').hidden) await renderGroupPanel();
}

function groupAction(action, userIds) {
  return run(() => post('/demo/group-action', { token: state.me.token, groupId: state.active.targetId, action, userIds, minutes: 10 }));
}

function onGroupEvent(e) {
  if (state.active?.group && state.active.targetId === e.groupId) {
    showError(new Error(String(e.message?.content?.content || 'You left the group')));
    closeGroupPanel();
    $('group-info-toggle').hidden = true;
    $('composer').hidden = true;
  }
}

$('group-info-toggle').addEventListener('click', toggleGroupPanel);
$('group-rename').addEventListener('submit', (e) => { e.preventDefault(); const name = $('group-name').value.trim(); if (name) run(() => state.client.updateGroup(state.active.targetId, { name })); });
$('group-notice-form').addEventListener('submit', (e) => { e.preventDefault(); run(() => state.client.updateGroup(state.active.targetId, { notice: $('group-notice').value })); });
$('group-add').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('group-add-name').value.trim();
  if (!name) return;
  $('group-add-name').value = '';
  run(async () => {
    const { userId } = await post('/demo/user', { token: state.me.token, userId: name });
    await state.client.addGroupMembers(state.active.targetId, [userId]);
  });
});
$('group-mute-all').addEventListener('click', () => groupAction($('group-mute-all').dataset.on ? 'unmuteAll' : 'muteAll'));
$('group-leave').addEventListener('click', () => run(async () => {
  await state.client.leaveGroup(state.active.targetId);
  onGroupEvent({ groupId: state.active.targetId, message: { content: { content: 'You left the group' } } });
}));
$('group-dismiss').addEventListener('click', () => groupAction('dismiss'));

// --- wiring ---

$('login-form').addEventListener('submit', (e) => { e.preventDefault(); login($('login-name').value); });
initSearch({
  client: () => state.client,
  open: (hit, s) => openConversation({ sid: hit.sid, targetId: s?.targetId ?? hit.targetId, group: hit.conversationType === ConversationType.GROUP,
    title: s?.title || s?.targetId || hit.targetId }, hit.seq),
});
$('logout').addEventListener('click', logout);
$('composer').addEventListener('submit', sendText);
$('text').addEventListener('input', suggestMentions);
$('text').addEventListener('input', onInput);
$('image-input').addEventListener('change', sendImage);
$('new-chat').addEventListener('submit', newChat);
$('new-group').addEventListener('submit', newGroup);
$('back').addEventListener('click', () => { $('app').classList.remove('show-chat'); state.active = null; renderConversations(); });
$('messages').addEventListener('scroll', () => { if ($('messages').scrollTop < 60) loadOlder(); });
document.addEventListener('visibilitychange', markReadIfVisible);

const saved = sessionStorage.getItem('chatd-demo-user');
if (saved) login(saved); else showLogin();
