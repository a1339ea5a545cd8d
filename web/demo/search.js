// The demo's message search box (docs/socket-protocol.md, "Search"): hits
// with their matches highlighted; a click opens the conversation at the hit.
// Text goes into the page with textContent only.

const $ = (id) => document.getElementById(id);

// snippetNode is the snippet with <mark> around each [start, end) highlight
// (UTF-16 offsets, as JavaScript strings count).
function snippetNode(snippet, highlights) {
  const span = document.createElement('span');
  span.className = 'snippet';
  let at = 0;
  for (const [start, end] of highlights || []) {
    if (start < at || end > snippet.length) continue;
    span.append(snippet.slice(at, start));
    const mark = document.createElement('mark');
    mark.textContent = snippet.slice(start, end);
    span.append(mark);
    at = end;
  }
  span.append(snippet.slice(at));
  return span;
}

// initSearch wires the search form; client() is the connected SDK client,
// open(hit, conversation) opens the conversation at the hit.
export function initSearch({ client, open }) {
  const results = $('search-results');
  let next = null;
  let query = '';

  async function run(more) {
    const c = client();
    if (!c) return;
    if (!more) {
      query = $('search-q').value.trim();
      next = null;
      results.replaceChildren();
      if (!query) { results.hidden = true; return; }
    }
    results.hidden = false;
    try {
      const res = await c.search(query, { limit: 20, before: more ? next : undefined });
      results.querySelector('.more')?.remove();
      for (const hit of res.hits) results.append(hitNode(c, hit));
      if (!res.hits.length && !more) results.append(li('empty', 'search-empty', 'No messages found'));
      next = res.next || null;
      if (next) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'link';
        b.textContent = 'more results';
        b.addEventListener('click', () => run(true));
        const item = li('more', 'search-more');
        item.append(b);
        results.append(item);
      }
    } catch (err) {
      results.replaceChildren(li('error', 'search-error', err.message || String(err)));
    }
  }

  function li(cls, testid, text) {
    const e = document.createElement('li');
    e.className = cls;
    e.dataset.testid = testid;
    if (text) e.textContent = text;
    return e;
  }

  function hitNode(c, hit) {
    const conv = c.conversation(hit.sid);
    const item = li('hit', 'search-hit');
    item.tabIndex = 0;
    item.setAttribute('role', 'button');
    item.dataset.sid = hit.sid;
    item.dataset.seq = hit.seq;
    const title = document.createElement('span');
    title.className = 'title';
    const name = conv?.title || conv?.targetId || hit.targetId;
    title.textContent = (hit.conversationType === 2 ? '# ' : '') + name + ' · ' + (hit.sendUser?.name || hit.senderUserId);
    item.append(title, snippetNode(hit.snippet, hit.highlights));
    const go = () => open(hit, conv);
    item.addEventListener('click', go);
    item.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
    return item;
  }

  $('search-form').addEventListener('submit', (e) => { e.preventDefault(); run(false); });
  $('search-q').addEventListener('input', () => { if (!$('search-q').value) { results.hidden = true; results.replaceChildren(); } });
}
