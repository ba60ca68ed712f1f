// @ts-check
/**
 * The sidebar: the chat list grouped by date (Today, Yesterday, Previous 7 days, Older), rename and
 * delete in place, search, the usage line, importing a chat. On a phone the sidebar is a drawer
 * (drawer.js).
 */
import './drawer.js';
import { $, $$, BASE, announce, cssEscape, getJson, refusal, request, shownChatId, view } from './chat-dom.js';

/** @param {string} id */
const chatItem = (id) => $(`[data-chat-list] [data-chat-item="${cssEscape(id)}"]`);
/** @param {string} id */
const chatLink = (id) => $(`[data-chat-list] a[href="${BASE}/chat/${cssEscape(id)}"]`);

export const markActiveChat = () => {
  const id = shownChatId();
  for (const a of $$('[data-chat-list] a')) {
    if (id && a.getAttribute('href') === `${BASE}/chat/${id}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
};

/** The date group of a chat by its last activity, in the reader's own time zone. */
const DAY_MS = 86400000;
/** @param {string | undefined} iso @param {Date} [now] */
const groupOf = (iso, now = new Date()) => {
  const t = Date.parse(iso || '');
  if (Number.isNaN(t)) return 'Older';
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  if (t >= today) return 'Today';
  if (t >= today - DAY_MS) return 'Yesterday';
  if (t >= today - 7 * DAY_MS) return 'Previous 7 days';
  return 'Older';
};

/** Headings (Today, Yesterday, Previous 7 days, Older) before the first chat of each group; the list is newest first. */
export const groupChats = () => {
  const list = $('[data-chat-list]');
  if (!list) return;
  for (const h of $$('[data-chat-group]', list)) h.remove();
  let last = '';
  for (const li of $$('[data-chat-item]', list)) {
    const group = groupOf(li.dataset.updatedAt);
    if (group === last) continue;
    last = group;
    const heading = document.createElement('li');
    heading.className = 'chat-group';
    heading.dataset.chatGroup = group;
    heading.textContent = group;
    list.insertBefore(heading, li);
  }
};

/** A chat with new activity moves to the top (Today). @param {string} id */
export const touchChat = (id) => {
  const li = chatItem(id);
  const list = $('[data-chat-list]');
  if (!li || !list) return;
  li.dataset.updatedAt = new Date().toISOString();
  const first = $('[data-chat-item]', list);
  if (first !== li) list.insertBefore(li, first);
  groupChats();
};

/** @param {HTMLElement} li @param {string | undefined} title */
const labelItem = (li, title) => {
  const name = title || 'Untitled chat';
  const rename = $('[data-chat-rename]', li);
  const del = $('[data-chat-delete]', li);
  if (rename) rename.setAttribute('aria-label', `Rename chat: ${name}`);
  if (del) del.setAttribute('aria-label', `Delete chat: ${name}`);
};

/** @param {string} id @param {string | undefined} title */
export const addChatToList = (id, title) => {
  const list = $('[data-chat-list]');
  if (!list || chatLink(id)) return;
  const tpl = /** @type {HTMLTemplateElement | null} */ ($('template[data-chat-item-template]'));
  /** @type {HTMLElement} */
  let li;
  /** @type {HTMLAnchorElement} */
  let a;
  const first = tpl?.content.firstElementChild;
  if (first) {
    li = /** @type {HTMLElement} */ (first.cloneNode(true));
    a = /** @type {HTMLAnchorElement} */ ($('a', li));
  } else {
    li = document.createElement('li');
    a = document.createElement('a');
    li.appendChild(a);
    a.setAttribute('hx-target', '#chat-content');
    a.setAttribute('hx-select', '#chat-content');
    a.setAttribute('hx-swap', 'outerHTML');
    a.setAttribute('hx-push-url', 'true');
  }
  const url = `${BASE}/chat/${id}`;
  li.dataset.chatItem = id;
  a.href = url;
  a.setAttribute('hx-get', url);
  a.textContent = title || 'Untitled chat';
  labelItem(li, title);
  li.dataset.updatedAt = new Date().toISOString();
  list.insertBefore(li, list.firstChild);
  groupChats();
  if (window.htmx) window.htmx.process(li);
};

/** @param {string} id @param {string | undefined} title */
export const setChatTitle = (id, title) => {
  if (!title) return;
  const a = chatLink(id);
  if (a) a.textContent = title;
  const li = chatItem(id);
  if (li) labelItem(li, title);
  const v = view();
  if (v && id === shownChatId()) {
    const h = $('[data-chat-title]', v);
    if (h) h.textContent = title;
    v.dataset.pageTitle = title;
    document.title = title;
  }
};

/** @param {HTMLElement} li */
const itemId = (li) => {
  if (li.dataset.chatItem) return li.dataset.chatItem;
  const a = $('a', li);
  return a ? (a.getAttribute('href') || '').replace(`${BASE}/chat/`, '') : '';
};

/** @param {HTMLElement} li @param {string} text */
const itemNote = (li, text) => {
  let note = $('[data-chat-item-error]', li);
  if (!text) {
    if (note) note.remove();
    return;
  }
  if (!note) {
    note = document.createElement('p');
    note.className = 'chat-item-error';
    note.setAttribute('role', 'alert');
    note.dataset.chatItemError = '';
    li.appendChild(note);
  }
  note.textContent = text;
};

// ---- rename: the link becomes a text field in place. Enter or leaving the field saves, Escape cancels.

/** @param {HTMLElement} li */
const startRename = (li) => {
  if ($('[data-rename-form]', li)) return;
  cancelDelete(li, false);
  itemNote(li, '');
  const a = $('a', li);
  const f = document.createElement('form');
  f.className = 'chat-rename';
  f.dataset.renameForm = '';
  const input = document.createElement('input');
  input.type = 'text';
  input.maxLength = 200;
  input.required = true;
  input.value = (a?.textContent || '').trim();
  input.dataset.renameInput = '';
  input.dataset.original = input.value;
  input.setAttribute('aria-label', 'Chat title (Enter saves, Escape cancels)');
  f.appendChild(input);
  li.classList.add('renaming');
  li.insertBefore(f, li.firstChild);
  input.focus();
  input.select();
};

/** @param {HTMLElement} li @param {boolean} refocus */
const endRename = (li, refocus) => {
  const f = $('[data-rename-form]', li);
  if (f) f.remove();
  li.classList.remove('renaming');
  if (refocus) $('[data-chat-rename]', li)?.focus();
};

/** @param {HTMLElement} li @param {boolean} refocus */
const saveRename = async (li, refocus) => {
  const input = /** @type {HTMLInputElement | null} */ ($('[data-rename-input]', li));
  if (!input || input.dataset.saving) return;
  const title = input.value.trim();
  if (!title || title === input.dataset.original) {
    endRename(li, refocus);
    return;
  }
  input.dataset.saving = '1';
  input.disabled = true;
  const id = itemId(li);
  try {
    const res = await request('PATCH', `${BASE}/api/chats/${encodeURIComponent(id)}`, { title: title.slice(0, 200) });
    if (!res.ok) throw new Error(String(res.status));
    const body = await res.json().catch(() => ({}));
    endRename(li, refocus);
    setChatTitle(id, body.title || title);
  } catch (_) {
    endRename(li, refocus);
    itemNote(li, 'Could not rename the chat. Please try again.');
  }
};

// ---- delete: an inline "Delete this chat?" with Delete and Cancel; Escape cancels. No blocking dialog.

/** @param {HTMLElement} li */
const askDelete = (li) => {
  if ($('[data-delete-confirm]', li)) return;
  endRename(li, false);
  itemNote(li, '');
  const box = document.createElement('div');
  box.className = 'chat-confirm';
  box.dataset.deleteConfirm = '';
  box.setAttribute('role', 'group');
  const title = $('a', li)?.textContent || 'this chat';
  box.setAttribute('aria-label', `Delete chat: ${title.trim()}?`);
  const q = document.createElement('span');
  q.className = 'chat-confirm-text';
  q.textContent = 'Delete this chat?';
  const yes = document.createElement('button');
  yes.type = 'button';
  yes.className = 'button-small button-danger';
  yes.dataset.confirmDelete = '';
  yes.textContent = 'Delete';
  const no = document.createElement('button');
  no.type = 'button';
  no.className = 'button-small';
  no.dataset.cancelDelete = '';
  no.textContent = 'Cancel';
  box.append(q, yes, no);
  li.classList.add('confirming');
  li.appendChild(box);
  no.focus();
};

/** @param {HTMLElement} li @param {boolean} refocus */
const cancelDelete = (li, refocus) => {
  const box = $('[data-delete-confirm]', li);
  if (box) box.remove();
  li.classList.remove('confirming');
  if (refocus) $('[data-chat-delete]', li)?.focus();
};

/** @param {HTMLElement} li */
const confirmDelete = async (li) => {
  const box = $('[data-delete-confirm]', li);
  if (!box || box.dataset.busy) return;
  box.dataset.busy = '1';
  const buttons = /** @type {HTMLButtonElement[]} */ ($$('button', box));
  for (const b of buttons) b.disabled = true;
  const id = itemId(li);
  try {
    const res = await request('DELETE', `${BASE}/api/chats/${encodeURIComponent(id)}`);
    if (!res.ok && res.status !== 404) throw new Error(String(res.status));
  } catch (_) {
    delete box.dataset.busy;
    for (const b of buttons) b.disabled = false;
    itemNote(li, 'Could not delete the chat. Please try again.');
    return;
  }
  // Focus goes to a neighbour in the list (or "New chat"), never lost on a removed element.
  const items = $$('[data-chat-list] [data-chat-item]');
  const at = items.indexOf(li);
  const next = items[at + 1] || items[at - 1];
  const wasShown = id === shownChatId();
  li.remove();
  groupChats();
  const newChat = $('[data-new-chat]');
  const focusTarget = (next && $('a', next)) || newChat;
  if (focusTarget) focusTarget.focus();
  announce('Chat deleted');
  if (wasShown && newChat) newChat.click();
};

// ---- search

/** @type {ReturnType<typeof setTimeout> | undefined} */
let searchTimer;
let searchSeq = 0;

/** A snippet with [matches] marked: text nodes and <mark>, never HTML from the server. @param {string | undefined} text */
const snippetNode = (text) => {
  const p = document.createElement('span');
  p.className = 'search-snippet';
  const parts = String(text || '').split(/(\[[^\]]*\])/);
  for (const part of parts) {
    if (/^\[[^\]]*\]$/.test(part)) {
      const m = document.createElement('mark');
      m.textContent = part.slice(1, -1);
      p.appendChild(m);
    } else if (part) p.appendChild(document.createTextNode(part));
  }
  return p;
};

/** @param {string} q */
const runSearch = async (q) => {
  const ul = $('[data-search-results]');
  if (!ul) return;
  const mine = ++searchSeq;
  if (!q.trim()) {
    ul.replaceChildren();
    ul.hidden = true;
    return;
  }
  /** @type {{ chat_id: string, message_id?: string, title?: string, snippet?: string }[] | null} */
  let results = [];
  try {
    const res = await getJson(`${BASE}/api/search?q=${encodeURIComponent(q.trim())}`);
    if (!res.ok) throw new Error(String(res.status));
    results = (await res.json()).results || [];
  } catch (_) {
    results = null;
  }
  if (mine !== searchSeq) return;
  ul.replaceChildren();
  ul.hidden = false;
  if (!results || !results.length) {
    const li = document.createElement('li');
    li.className = 'search-empty';
    li.textContent = results ? 'No matches' : 'Search failed. Try again.';
    ul.appendChild(li);
    return;
  }
  // One row per chat: its best hit (a title hit and a message hit of the same chat say the same).
  const seen = new Set();
  results = results.filter((r) => !seen.has(r.chat_id) && seen.add(r.chat_id));
  for (const r of results.slice(0, 20)) {
    const li = document.createElement('li');
    li.dataset.searchResult = r.message_id || '';
    const a = document.createElement('a');
    const url = `${BASE}/chat/${encodeURIComponent(r.chat_id)}`;
    a.href = url;
    a.className = 'search-link';
    a.setAttribute('hx-get', url);
    a.setAttribute('hx-target', '#chat-content');
    a.setAttribute('hx-select', '#chat-content');
    a.setAttribute('hx-swap', 'outerHTML');
    a.setAttribute('hx-push-url', 'true');
    const title = document.createElement('span');
    title.className = 'search-title';
    title.textContent = r.title || 'Untitled chat';
    a.append(title, snippetNode(r.snippet));
    li.appendChild(a);
    ul.appendChild(li);
  }
  if (window.htmx) window.htmx.process(ul);
};

// ---- import

/** @param {HTMLInputElement} input */
const importChat = async (input) => {
  const file = input.files && input.files[0];
  input.value = '';
  const err = $('[data-import-error]');
  if (err) err.textContent = '';
  if (!file) return;
  try {
    const text = await file.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch (_) {
      throw new Error('That file is not JSON.');
    }
    const res = await request('POST', `${BASE}/api/chats/import`, json);
    if (!res.ok) throw new Error(res.status === 400 ? 'That file is not a chat export.' : `Import failed: ${await refusal(res)}`);
    const body = await res.json();
    location.assign(`${BASE}/chat/${encodeURIComponent(body.id)}`);
  } catch (e) {
    if (err) err.textContent = e instanceof Error && e.message ? e.message : 'Import failed.';
  }
};

// ---- usage

/** @type {Promise<void> | null} */
let usageInFlight = null;
export const refreshUsage = async () => {
  // The sidebar's line (an answer keeps its own in data-answer-usage).
  const el = $('p[data-usage]');
  if (!el) return;
  try {
    const res = await getJson(`${BASE}/api/usage`);
    if (!res.ok) return;
    const u = await res.json();
    const n = (/** @type {unknown} */ x) => Number(x || 0).toLocaleString('en');
    const plural = (/** @type {unknown} */ x, /** @type {string} */ one, /** @type {string} */ many) => `${n(x)} ${Number(x) === 1 ? one : many}`;
    el.textContent = `Usage: ${plural(u.total_tokens, 'token', 'tokens')} · ${plural(u.messages, 'answer', 'answers')}`;
    el.title = `Prompt ${n(u.prompt_tokens)} · completion ${n(u.completion_tokens)} tokens`;
    el.dataset.totalTokens = String(u.total_tokens || 0);
  } catch (_) {
    /* keep the old figure */
  }
};
/**
 * Right after an answer ends (its usage is stored before its end frame is sent): at once, not
 * after a pause that a reader sees as the line lagging one answer behind; ends that come while a
 * fetch is out are covered by one more fetch after it.
 */
let usageAgain = false;
export const scheduleUsage = () => {
  if (usageInFlight) {
    usageAgain = true;
    return;
  }
  usageInFlight = refreshUsage().finally(() => {
    usageInFlight = null;
    if (usageAgain) {
      usageAgain = false;
      scheduleUsage();
    }
  });
};

/** Clicks in the chat list (rename, delete) and its search; true when handled. @param {Element} t */
export const sidebarClick = (t) => {
  const item = /** @type {HTMLElement | null} */ (t.closest('[data-chat-list] li'));
  if (item) {
    if (t.closest('[data-chat-rename]')) {
      startRename(item);
      return true;
    }
    if (t.closest('[data-chat-delete]')) {
      askDelete(item);
      return true;
    }
    if (t.closest('[data-confirm-delete]')) {
      void confirmDelete(item);
      return true;
    }
    if (t.closest('[data-cancel-delete]')) {
      cancelDelete(item, true);
      return true;
    }
  }
  if (t.closest('[data-search-results] a')) {
    const ul = $('[data-search-results]');
    if (ul) ul.hidden = true;
  }
  return false;
};

/** Esc in the chat list: cancels a rename or a delete; true when handled. @param {Element | null} t */
export const sidebarEscape = (t) => {
  if (t && t.matches('[data-rename-input]')) {
    const li = /** @type {HTMLElement | null} */ (t.closest('li'));
    if (li) endRename(li, true);
    return true;
  }
  const confirm = t ? t.closest('[data-delete-confirm]') : null;
  const li = /** @type {HTMLElement | null} */ (confirm?.closest('li') ?? null);
  if (li) {
    cancelDelete(li, true);
    return true;
  }
  return false;
};

document.addEventListener('submit', (ev) => {
  const t = ev.target;
  if (t instanceof Element && t.matches('[data-rename-form]')) {
    ev.preventDefault();
    const li = /** @type {HTMLElement | null} */ (t.closest('li'));
    if (li) void saveRename(li, true);
  }
});

// Leaving the title field saves it (as Enter does).
document.addEventListener('focusout', (ev) => {
  const t = ev.target;
  if (t instanceof HTMLElement && t.matches('[data-rename-input]')) {
    const li = /** @type {HTMLElement | null} */ (t.closest('li'));
    if (!li) return;
    setTimeout(() => {
      if (li.isConnected && $('[data-rename-input]', li) === t && !t.dataset.saving) void saveRename(li, false);
    }, 0);
  }
});

document.addEventListener('input', (ev) => {
  const t = ev.target;
  if (t instanceof HTMLInputElement && t.matches('[data-search]')) {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void runSearch(t.value), 250);
  }
});

document.addEventListener('change', (ev) => {
  const t = ev.target;
  if (t instanceof HTMLInputElement && t.matches('[data-import]')) void importChat(t);
});
