// Kalam Live: a live inbox (USER table), a shared room (SHARED table) and a topic worker, on
// @kalam-wasm/client and @kalam-wasm/consumer. Everything on screen comes from live queries:
// writes go to the server and come back through the subscription, so every open tab (and
// every device) shows the same thing.
import { Auth, KalamError, createClient } from '@kalam-wasm/client';
import { avatar, colorFor, dayLabel, displayName, fullTime, h, icon, reconcile, timeOf, toast } from './ui.js';
import { ResiliencePanel } from './resilience.js';

const app = document.getElementById('app');
const config = await loadConfig();
const serverUrl = (config.url ?? location.origin).replace(/\/+$/, '');
const NS = config.namespace ?? 'demo';
const T = { inbox: `${NS}.inbox`, room: `${NS}.room`, outbox: `${NS}.room_outbox` };

/** Everything about the signed-in session; null on the sign-in screen. */
let session = null;

async function loadConfig() {
  try {
    const res = await fetch('demo-config.json', { cache: 'no-store' });
    if (res.ok) return await res.json();
  } catch { /* fall through */ }
  return { mode: 'external', url: null, namespace: 'demo', people: [], bot: null, faults: null };
}

// ------------------------------------------------------------------------ sign-in screen

function showSignIn(error) {
  document.title = 'Sign in · Kalam Live';
  const form = h('form.signin-form', { onsubmit: (e) => { e.preventDefault(); signIn(form.user.value.trim(), form.password.value, form); } },
    h('label', h('span', 'Username'), h('input', { name: 'user', autocomplete: 'username', required: true, placeholder: 'alice' })),
    h('label', h('span', 'Password'), h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, placeholder: '••••••••' })),
    h('button.btn.btn-primary.btn-block', { type: 'submit' }, 'Sign in'),
  );
  const people = config.people.map((p) => h('button.person', {
    type: 'button', dataset: { testid: `signin-${p.id}` },
    onclick: (e) => signIn(p.id, p.password, e.currentTarget),
  },
  avatar(p.name, p.color, { size: 'lg' }),
  h('div.person-text', h('strong', p.name), h('code', `${p.id} · ${p.password}`)),
  h('span.person-go', 'Sign in', icon('logout', 16))));

  app.className = 'signin';
  app.removeAttribute('aria-busy');
  app.replaceChildren(h('main.signin-card',
    h('div.brand.brand-lg', h('img', { src: 'assets/logo.svg', alt: '', width: 44, height: 44 }), h('div', h('h1', 'Kalam Live'), h('p', 'Realtime inbox and team room on KalamDB'))),
    error ? h('div.alert', icon('slash', 16), h('span', error)) : null,
    people.length ? [h('h2.section-title', 'Demo accounts'), h('div.people', people), h('div.divider', h('span', 'or sign in with any account'))] : null,
    form,
    h('footer.signin-foot',
      h('span.dot', { class: config.mode === 'embedded' ? 'dot-ok' : 'dot-info' }),
      config.mode === 'embedded'
        ? `Embedded KalamDB test server · ${new URL(serverUrl).host}`
        : `KalamDB at ${serverUrl}`),
  ));
}

async function signIn(user, password, trigger) {
  if (!user || !password) return;
  trigger?.setAttribute?.('disabled', '');
  app.querySelector('.signin-card')?.classList.add('busy');
  const client = createClient({
    url: serverUrl,
    auth: Auth.basic(user, password),
    // A visible countdown on the pill: the first retry waits up to 2 s (full jitter). The cap
    // keeps catch-up quick: after the lab's 8 s outage the app is back within 5 s of the server.
    reconnect: { initialDelayMs: 2000, maxDelayMs: 5000 },
  });
  try {
    const me = await client.login();
    startSession(client, me.user);
  } catch (err) {
    const e = KalamError.from ? KalamError.from(err) : err;
    await client.shutdown().catch(() => {});
    showSignIn(e.code === 'NETWORK' || e.code === 'TIMEOUT'
      ? `Cannot reach the server (${e.message}).`
      : e.status === 401 || /credential|unauthori/i.test(e.message) ? 'Wrong username or password.' : `Sign-in failed: ${e.message}`);
  }
}

// ------------------------------------------------------------------------ the app shell

function startSession(client, user) {
  const me = { id: user.id, role: user.role, name: displayName(user.id, config.people, config.bot) };
  session = {
    client, me, view: 'inbox', unsubs: [], worker: null, disposed: false,
    rows: { inbox: [], room: [], outbox: [] }, unread: { inbox: 0, room: 0 }, loaded: { inbox: false, room: false },
    files: new Map(), attachment: null,
  };
  const s = session;

  const pill = h('div.pill.pill-connecting', { dataset: { testid: 'connection', state: 'connecting' }, role: 'status', 'aria-live': 'polite' },
    h('span.pill-dot'), h('span.pill-text', 'Connecting…'));
  const navInbox = navItem('inbox', 'inbox', 'Inbox', 'Private to you');
  const navRoom = navItem('room', 'hash', 'lobby', 'Everyone');
  s.dom = {
    pill, navInbox, navRoom,
    title: h('h2'), subtitle: h('p'), list: h('div.messages', { dataset: { testid: 'messages' }, role: 'log', 'aria-live': 'polite' }),
    empty: h('div.empty'), composer: null, workerCard: null,
  };
  const resilienceBtn = config.faults
    ? h('button.btn.btn-ghost', { type: 'button', dataset: { testid: 'toggle-resilience' }, onclick: () => s.panel.toggle() }, icon('activity', 16), h('span', 'Resilience'))
    : null;
  const header = h('header.topbar',
    h('div.brand', h('img', { src: 'assets/logo.svg', alt: '', width: 30, height: 30 }), h('span', 'Kalam Live')),
    pill,
    h('div.spacer'),
    resilienceBtn,
    h('div.me', avatar(me.name, colorFor(me.id, config.people), { size: 'sm' }), h('div.me-text', h('strong', { dataset: { testid: 'me' } }, me.name), h('span', me.role)),
      h('button.icon-btn', { type: 'button', title: 'Sign out', 'aria-label': 'Sign out', dataset: { testid: 'signout' }, onclick: signOut }, icon('logout', 18))),
  );
  s.dom.workerCard = workerCard();
  const sidebar = h('aside.sidebar',
    h('div.side-title', 'Conversations'),
    h('nav', navInbox, navRoom),
    h('div.side-title', 'Topic worker'),
    s.dom.workerCard.el,
    h('div.side-foot', h('span', 'Open this page in another tab to see updates arrive live.'),
      h('a.link', { href: location.href, target: '_blank', rel: 'noopener' }, 'Open a new tab', icon('external', 13))),
  );
  s.dom.composer = composer();
  const main = h('main.conversation',
    h('div.conv-head', h('div', s.dom.title, s.dom.subtitle)),
    h('div.scroller', s.dom.empty, s.dom.list),
    s.dom.composer.el,
  );
  s.panel = new ResiliencePanel({ config, serverUrl, client });
  app.className = 'shell';
  app.replaceChildren(header, h('div.body', sidebar, main, s.panel.el));

  client.onConnectionStateChange((state) => onConnectionState(state));
  window.addEventListener('offline', onBrowserOffline);
  select('inbox');
  subscribe();
  startWorker();
}

function navItem(view, iconName, label, hint) {
  return h('button.nav-item', { type: 'button', dataset: { testid: `nav-${view}`, view }, onclick: () => select(view) },
    h('span.nav-icon', icon(iconName, 17)),
    h('span.nav-text', h('strong', label), h('span', hint)),
    h('span.badge', { dataset: { testid: `unread-${view}` }, hidden: true }, '0'));
}

function select(view) {
  const s = session;
  s.view = view;
  s.unread[view] = 0;
  for (const n of [s.dom.navInbox, s.dom.navRoom]) n.classList.toggle('active', n.dataset.view === view);
  if (view === 'inbox') {
    s.dom.title.replaceChildren(icon('inbox', 18), h('span', 'Inbox'));
    s.dom.subtitle.textContent = `Private to ${s.me.name} · USER table ${T.inbox} · Kalam Bot replies from a topic worker`;
  } else {
    s.dom.title.replaceChildren(icon('hash', 18), h('span', 'lobby'));
    s.dom.subtitle.textContent = `Shared with everyone · SHARED table ${T.room} · posts are relayed by the topic worker`;
  }
  s.dom.composer.setMode(view);
  s.dom.list.replaceChildren();
  render();
  updateBadges();
  s.dom.composer.focus();
}

// ------------------------------------------------------------------------ live data

async function subscribe() {
  const s = session;
  const on = (name) => (rows, change) => {
    if (s.disposed) return;
    s.rows[name] = rows;
    if (name !== 'outbox') {
      if (!change.initial && !change.resync) {
        const fresh = change.inserted.filter((r) => !isMine(name, r));
        if (fresh.length && (s.view !== name || document.hidden)) s.unread[name] += fresh.length;
      }
      s.loaded[name] = true;
    }
    render();
    updateBadges();
  };
  const onError = (name) => (err) => toast(`Live ${name} failed: ${err.message}`, 'error', 6000);
  try {
    s.unsubs.push(await s.client.live(`SELECT * FROM ${T.inbox}`, on('inbox'), { limit: 500, onError: onError('inbox') }));
    s.unsubs.push(await s.client.live(`SELECT * FROM ${T.room}`, on('room'), { limit: 500, onError: onError('room') }));
    s.unsubs.push(await s.client.live(`SELECT * FROM ${T.outbox}`, on('outbox'), { limit: 100, onError: onError('outbox') }));
  } catch (err) {
    toast(`Could not subscribe: ${err.message}`, 'error', 8000);
  }
}

function isMine(table, row) {
  if (table === 'inbox') return str(row.author) === 'me';
  if (table === 'room') return str(row.author) === session.me.id;
  return true;
}

const str = (cell) => cell?.asString?.() ?? null;
const dateOf = (cell) => cell?.asDate?.() ?? null;
const keyOf = (row) => str(row.id);
const byTime = (a, b) => {
  const ta = dateOf(a.created_at)?.getTime() ?? 0;
  const tb = dateOf(b.created_at)?.getTime() ?? 0;
  if (ta !== tb) return ta - tb;
  const ia = BigInt(keyOf(a) ?? 0);
  const ib = BigInt(keyOf(b) ?? 0);
  return ia < ib ? -1 : ia > ib ? 1 : 0;
};

function render() {
  const s = session;
  if (!s) return;
  const view = s.view;
  const rows = [...s.rows[view]].sort(byTime);
  const pending = view === 'room' ? [...s.rows.outbox].sort(byTime) : [];
  const items = [];
  let lastDay = '';
  for (const row of rows) {
    const d = dateOf(row.created_at) ?? new Date();
    const day = d.toDateString();
    if (day !== lastDay) { items.push({ type: 'day', key: `day:${day}`, label: dayLabel(d) }); lastDay = day; }
    items.push({ type: 'msg', key: `m:${keyOf(row)}`, row });
  }
  for (const row of pending) items.push({ type: 'pending', key: `p:${keyOf(row)}`, row });

  const scroller = s.dom.list.parentElement;
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  reconcile(s.dom.list, items, {
    key: (it) => it.key,
    sig: (it) => (it.type === 'day' ? it.label : `${str(it.row._seq)}|${it.type}`),
    render: (it) => (it.type === 'day' ? h('div.day', h('span', it.label)) : renderMessage(view, it.row, it.type === 'pending')),
  });
  const loaded = view === 'inbox' ? s.loaded.inbox : s.loaded.room;
  s.dom.empty.hidden = items.length > 0 || !loaded;
  s.dom.empty.replaceChildren(...emptyState(view));
  s.dom.list.parentElement.classList.toggle('loading', !loaded);
  if (atBottom || s.stickToBottom) { scroller.scrollTop = scroller.scrollHeight; s.stickToBottom = false; }
}

function emptyState(view) {
  if (view === 'inbox') {
    return [h('div.empty-icon', icon('inbox', 28)), h('h3', 'Your inbox is empty'),
      h('p', 'Write a note or drop in a file. Kalam Bot, a topic worker running in a Web Worker, answers every new message. Only you can see this inbox.')];
  }
  return [h('div.empty-icon', icon('users', 28)), h('h3', 'No messages in #lobby yet'),
    h('p', 'Say hello: everyone who is signed in sees it appear live.')];
}

function renderMessage(view, row, pending) {
  const s = session;
  const id = keyOf(row);
  const body = str(row.body) ?? '';
  const created = dateOf(row.created_at);
  let authorId;
  let mine;
  let bot = false;
  if (view === 'inbox') {
    bot = str(row.author) === 'bot';
    authorId = bot ? config.bot?.id ?? 'bot' : s.me.id;
    mine = !bot;
  } else {
    authorId = pending ? s.me.id : str(row.author);
    mine = authorId === s.me.id;
  }
  const name = bot ? (config.bot?.name ?? 'Kalam Bot') : displayName(authorId, config.people, config.bot);
  const edited = view === 'inbox' ? dateOf(row.edited_at) : null;
  const file = view === 'inbox' ? row.attachment?.asFile?.() : null;

  const text = h('div.text', body);
  const bubble = h('div.bubble', body ? text : null, file ? renderAttachment(file) : null);
  const meta = h('div.meta',
    h('time', { datetime: created?.toISOString(), title: fullTime(created) }, timeOf(created)),
    edited ? h('span.edited', { title: `Edited ${fullTime(edited)}` }, 'edited') : null,
    pending ? h('span.sending', h('span.spinner'), 'Sending via worker…') : null,
  );
  const actions = view === 'inbox' && mine
    ? h('div.actions',
      h('button.icon-btn', { type: 'button', title: 'Edit', 'aria-label': 'Edit message', dataset: { testid: 'edit' }, onclick: () => startEdit(el, row) }, icon('edit', 15)),
      h('button.icon-btn.danger', { type: 'button', title: 'Delete', 'aria-label': 'Delete message', dataset: { testid: 'delete' }, onclick: () => removeMessage(el, id) }, icon('trash', 15)))
    : null;
  const el = h(`div.msg${mine ? '.mine' : ''}${bot ? '.from-bot' : ''}${pending ? '.pending' : ''}`,
    { dataset: { testid: pending ? 'pending' : 'message', id, author: authorId } },
    mine ? null : avatar(name, colorFor(authorId, config.people), { bot, size: 'sm' }),
    h('div.msg-main', mine ? null : h('div.name', name, bot ? h('span.tag', 'worker') : null), h('div.bubble-row', mine ? actions : null, bubble, mine ? null : actions), meta),
  );
  return el;
}

function renderAttachment(ref) {
  const s = session;
  const file = ref.download_path ? ref : ref.forTable(NS, 'inbox');
  const cached = s.files.get(ref.id);
  const load = () => {
    if (!s.files.has(ref.id)) {
      s.files.set(ref.id, file.download().then((blob) => URL.createObjectURL(blob)));
    }
    return s.files.get(ref.id);
  };
  if (ref.isImage()) {
    const img = h('img', { alt: ref.name, loading: 'lazy', dataset: { testid: 'attachment-image' } });
    const box = h('a.preview.loading', { href: '#', title: `${ref.name} · ${ref.formatSize()}`, onclick: async (e) => { e.preventDefault(); window.open(await load(), '_blank'); } }, img);
    img.onload = () => {
      box.classList.remove('loading');
      if (img.naturalWidth < 120) img.classList.add('tiny'); // icons and pixels: scale up crisply
    };
    (cached ?? load()).then((url) => { img.src = url; })
      .catch((err) => { box.classList.remove('loading'); box.classList.add('failed'); box.title = `Could not load: ${err.message}`; });
    return h('div.attachment', box, h('div.file-caption', icon('clip', 13), h('span', ref.name), h('span.muted', ref.formatSize())));
  }
  return h('a.file-chip', {
    href: '#', dataset: { testid: 'attachment-file' },
    onclick: async (e) => {
      e.preventDefault();
      const url = await load();
      const a = h('a', { href: url, download: ref.name });
      a.click();
    },
  }, h('span.file-icon', icon('file', 18)), h('span.file-text', h('strong', ref.name), h('span', `${ref.formatSize()} · ${ref.mime}`)), icon('download', 16));
}

function updateBadges() {
  const s = session;
  for (const [view, nav] of [['inbox', s.dom.navInbox], ['room', s.dom.navRoom]]) {
    const b = nav.querySelector('.badge');
    const n = s.unread[view];
    b.hidden = n === 0;
    b.textContent = n > 99 ? '99+' : String(n);
  }
  const total = s.unread.inbox + s.unread.room;
  document.title = `${total ? `(${total}) ` : ''}${s.me.name} · Kalam Live`;
}
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && session) { session.unread[session.view] = 0; updateBadges(); }
});

// ------------------------------------------------------------------------ writing

function composer() {
  const s = session;
  const input = h('textarea', { rows: 1, placeholder: 'Write a message…', 'aria-label': 'Message', dataset: { testid: 'composer-input' } });
  const fileInput = h('input', { type: 'file', hidden: true, dataset: { testid: 'composer-file' } });
  const attachBtn = h('button.icon-btn', { type: 'button', title: 'Attach a file', 'aria-label': 'Attach a file', onclick: () => fileInput.click() }, icon('clip', 18));
  const sendBtn = h('button.btn.btn-primary.send', { type: 'submit', dataset: { testid: 'send' } }, h('span', 'Send'), icon('send', 16));
  const chip = h('div.pending-file', { hidden: true });
  const progress = h('div.progress', { hidden: true }, h('div.bar'));
  const hint = h('div.composer-hint');
  const form = h('form.composer', {
    onsubmit: async (e) => {
      e.preventDefault();
      await send();
    },
  }, h('div.composer-inner', chip, progress, h('div.composer-row', attachBtn, fileInput, input, sendBtn), hint));

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  input.addEventListener('input', grow);
  function grow() {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  }
  fileInput.addEventListener('change', () => {
    const f = fileInput.files?.[0];
    setFile(f ?? null);
    fileInput.value = '';
  });
  function setFile(f) {
    s.attachment = f;
    chip.hidden = !f;
    if (!f) { chip.replaceChildren(); return; }
    const thumb = f.type.startsWith('image/') ? h('img', { src: URL.createObjectURL(f), alt: '' }) : icon('file', 18);
    chip.replaceChildren(h('span.thumb', thumb), h('span.file-text', h('strong', f.name), h('span', formatBytes(f.size))),
      h('button.icon-btn', { type: 'button', title: 'Remove attachment', 'aria-label': 'Remove attachment', onclick: () => setFile(null) }, icon('x', 16)));
  }
  async function send() {
    const body = input.value.trim();
    const file = s.view === 'inbox' ? s.attachment : null;
    if (!body && !file) return;
    sendBtn.disabled = true;
    try {
      if (s.view === 'room') {
        await s.client.insert(T.outbox, { body });
      } else if (file) {
        progress.hidden = false;
        await s.client.queryWithFiles(`INSERT INTO ${T.inbox} (body, attachment) VALUES ($1, FILE("upload"))`, { upload: file }, [body || null], {
          onProgress: (p) => { progress.firstChild.style.width = `${p.percent}%`; },
        });
        setFile(null);
      } else {
        await s.client.insert(T.inbox, { body });
      }
      input.value = '';
      grow();
      s.stickToBottom = true;
    } catch (err) {
      toast(`Not sent: ${err.message}`, 'error', 6000);
    } finally {
      sendBtn.disabled = false;
      progress.hidden = true;
      progress.firstChild.style.width = '0';
      input.focus();
    }
  }
  return {
    el: form,
    focus: () => input.focus(),
    setMode(view) {
      attachBtn.hidden = view !== 'inbox';
      if (view !== 'inbox') setFile(null);
      input.placeholder = view === 'inbox' ? 'Write a note to yourself…' : 'Message #lobby…';
      hint.textContent = view === 'inbox'
        ? 'Enter to send · Shift+Enter for a new line · attachments up to 10 MB'
        : 'Enter to send · plain users cannot write SHARED tables, so the topic worker posts for you';
    },
  };
}

function formatBytes(n) {
  const u = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

function startEdit(el, row) {
  const s = session;
  const id = keyOf(row);
  const bubble = el.querySelector('.bubble');
  const old = str(row.body) ?? '';
  const area = h('textarea.edit-input', { rows: 2, dataset: { testid: 'edit-input' } });
  area.value = old;
  const save = async () => {
    const body = area.value.trim();
    if (body === old) return cancel();
    try {
      // update() binds values as params and quotes identifiers; the change arrives live.
      await s.client.update(T.inbox, id, { body, edited_at: new Date() });
      el.classList.remove('editing');
      render();
    } catch (err) {
      toast(`Not saved: ${err.message}`, 'error');
    }
  };
  const cancel = () => { el.classList.remove('editing'); el.dataset.sig = ''; render(); };
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); save(); }
    if (e.key === 'Escape') cancel();
  });
  el.classList.add('editing');
  bubble.replaceChildren(area, h('div.edit-actions',
    h('button.btn.btn-ghost.btn-sm', { type: 'button', onclick: cancel }, 'Cancel'),
    h('button.btn.btn-primary.btn-sm', { type: 'button', dataset: { testid: 'edit-save' }, onclick: save }, 'Save')));
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

async function removeMessage(el, id) {
  el.classList.add('removing');
  try {
    await session.client.delete(T.inbox, id);
  } catch (err) {
    el.classList.remove('removing');
    toast(`Not deleted: ${err.message}`, 'error');
  }
}

// ------------------------------------------------------------------------ connection pill

function onConnectionState(state) {
  const s = session;
  if (!s || s.disposed) return;
  s.panel?.onState(state);
  clearInterval(s.countdown);
  const { pill } = s.dom;
  const text = pill.querySelector('.pill-text');
  const set = (cls, label, title) => {
    pill.className = `pill pill-${cls}`;
    pill.dataset.state = state.state;
    text.textContent = label;
    pill.title = title ?? label;
  };
  switch (state.state) {
    case 'connected':
      set('ok', 'Live', 'Connected: changes arrive as they happen');
      break;
    case 'connecting':
      set('connecting', 'Connecting…');
      break;
    case 'reconnecting': {
      const until = Date.now() + (state.delayMs ?? 0);
      const tick = () => {
        const left = Math.ceil((until - Date.now()) / 1000);
        set('warn', left > 0 ? `Reconnecting in ${left}s` : 'Reconnecting…', `Connection lost: attempt ${state.attempt ?? 1}`);
        if (left <= 0) clearInterval(s.countdown);
      };
      tick();
      s.countdown = setInterval(tick, 250);
      break;
    }
    case 'needs_auth':
      set('bad', 'Sign-in needed', 'The server refused our credentials');
      break;
    default:
      set('off', navigator.onLine ? 'Offline' : 'No network', 'Not connected');
  }
}

function onBrowserOffline() {
  if (!session) return;
  const { pill } = session.dom;
  pill.className = 'pill pill-off';
  pill.querySelector('.pill-text').textContent = 'No network';
}

// ------------------------------------------------------------------------ the topic worker

function workerCard() {
  const status = h('span.worker-status', 'Starting…');
  const dot = h('span.dot.dot-info');
  const count = h('strong', { dataset: { testid: 'worker-count' } }, '0');
  const last = h('div.worker-last', { dataset: { testid: 'worker-last' } }, 'Waiting for new messages');
  const el = h('div.worker-card', { dataset: { testid: 'worker' } },
    h('div.worker-head', h('span.worker-icon', icon('cpu', 16)), h('div', h('strong', 'Kalam Bot'), h('div.worker-sub', 'Dedicated Web Worker'))),
    h('div.worker-line', dot, status),
    h('dl.worker-stats', h('dt', 'Handled here'), h('dd', count), h('dt', 'Topic'), h('dd', h('code', `${NS}.activity`)), h('dt', 'Group'), h('dd', h('code', 'kalam-bot'))),
    last);
  let handled = 0;
  return {
    el,
    state(state, detail) {
      dot.className = `dot ${state === 'running' ? 'dot-ok' : state === 'error' ? 'dot-bad' : 'dot-warn'}`;
      status.textContent = state === 'running' ? 'Running · listening' : state === 'error' ? `Stopped: ${detail}` : state === 'retrying' ? `Retrying: ${detail}` : 'Starting…';
      el.dataset.state = state;
    },
    handled(event) {
      handled += 1;
      count.textContent = String(handled);
      last.replaceChildren(h('span.muted', timeOf(new Date())), ' ', event.summary);
      last.classList.remove('flash');
      void last.offsetWidth;
      last.classList.add('flash');
    },
  };
}

function startWorker() {
  const s = session;
  const card = s.dom.workerCard;
  if (!config.bot) {
    card.state('error', 'no service account configured');
    return;
  }
  try {
    s.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'kalam-topic-worker' });
  } catch (err) {
    card.state('error', err.message);
    return;
  }
  s.worker.onmessage = ({ data }) => {
    if (data.type === 'state') card.state(data.state, data.detail);
    if (data.type === 'handled') card.handled(data);
  };
  s.worker.onerror = (e) => card.state('error', e.message || 'worker failed to load');
  s.worker.postMessage({ type: 'start', url: serverUrl, namespace: NS, bot: config.bot, people: config.people });
}

// ------------------------------------------------------------------------ sign out

async function signOut() {
  const s = session;
  if (!s) return;
  s.disposed = true;
  session = null;
  clearInterval(s.countdown);
  window.removeEventListener('offline', onBrowserOffline);
  s.worker?.postMessage({ type: 'stop' });
  setTimeout(() => s.worker?.terminate(), 1500);
  await Promise.allSettled(s.unsubs.map((u) => u()));
  await s.client.shutdown().catch(() => {});
  for (const p of s.files.values()) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
  showSignIn();
}

showSignIn();
