// @ts-check
/**
 * Drawing messages: each message's state (its raw text and reasoning, the last `seq` applied,
 * frames waiting for a gap), live thinking folded into "Thought for N s", the notes under an answer
 * (stopped, cut short, retrying), file chips, the versions switcher, errors on a message or over
 * the box, and scrolling. Renders are batched to one per animation frame.
 */
import { $, $$, BASE, announce, ensureChild, formatSize, stats, view } from './chat-dom.js';
import { fillError } from './errors.js';
import { renderFull, renderStreaming } from './chat-markdown.js';
import { decorate, newText } from './message-actions.js';

/** @typedef {import('./chat-dom.js').Frame} Frame */
/** @typedef {import('./chat-dom.js').FileInfo} FileInfo */

/**
 * Per message: raw Markdown and reasoning, last seq applied, frames waiting for a gap, timings.
 * @typedef {{
 *   raw: string, reasoning: string, seq: number, waiting: Map<number, Frame>, askedResume: number,
 *   render: import('./chat-markdown.js').RenderState, startedAt: number, thoughtMs: number,
 *   readerToggled?: boolean, autoOpened?: boolean
 * }} MessageState
 */

const STATUS_TEXT = /** @type {Record<string, string>} */ ({
  stopped: 'Stopped',
  interrupted: 'Interrupted: the answer broke off',
  error: 'The model could not answer',
});

/** A complete answer the model cut short (its finish_reason), so it is not passed off as whole. */
const FINISH_TEXT = /** @type {Record<string, string>} */ ({
  length: 'Cut short: the answer reached its length limit',
  content_filter: "Cut short by the model provider's content filter",
});

/** @type {WeakMap<HTMLElement, MessageState>} */
const states = new WeakMap();

/** @param {HTMLElement} el @returns {MessageState} */
export const stateOf = (el) => {
  let st = states.get(el);
  if (!st) {
    const content = $('[data-content]', el);
    const reasoning = $('[data-reasoning-text]', el);
    st = {
      raw: content ? content.textContent || '' : '',
      reasoning: reasoning ? reasoning.textContent || '' : '',
      seq: Number(el.dataset.seq || 0),
      waiting: new Map(),
      askedResume: 0,
      render: { committed: 0, frozenNodes: 0, incremental: true },
      startedAt: 0,
      thoughtMs: storedThought(el.dataset.messageId),
    };
    states.set(el, st);
  }
  return st;
};

// "Thought for N s" is measured from frame arrival times; kept for the tab so a reload shows it too.
const THOUGHT_KEY = 'chat.thought.';
/** @param {string | undefined} id */
const storedThought = (id) => {
  try {
    return id ? Number(sessionStorage.getItem(THOUGHT_KEY + id)) || 0 : 0;
  } catch (_) {
    return 0;
  }
};
/** @param {string | undefined} id @param {number} ms */
const keepThought = (id, ms) => {
  try {
    if (id) sessionStorage.setItem(THOUGHT_KEY + id, String(ms));
  } catch (_) {
    /* storage full or off: the summary just says "Thought" after a reload */
  }
};

/** Thinking ended (the first answer piece, or the end): time it from the start frame we saw live. @param {HTMLElement} el @param {MessageState} st */
export const markThoughtDone = (el, st) => {
  if (st.thoughtMs || !st.startedAt || !st.reasoning) return;
  st.thoughtMs = Math.max(1, Date.now() - st.startedAt);
  keepThought(el.dataset.messageId, st.thoughtMs);
};

/** The messages list of the shown chat. */
const messagesList = () => {
  const v = view();
  return v ? $('[data-messages]', v) : null;
};

/**
 * A new message at the end of the list.
 * @param {string} role
 * @param {string | null} id
 * @param {string} status
 */
export const createMessage = (role, id, status) => {
  const el = document.createElement('article');
  el.className = 'message';
  if (id) el.dataset.messageId = id;
  el.dataset.role = role;
  el.dataset.status = status;
  el.setAttribute('aria-label', `${role} message`);
  const content = document.createElement('div');
  content.className = 'content';
  content.dataset.content = '';
  el.appendChild(content);
  // The empty chat's suggestions go; only hidden while a first message waits for the server, which may refuse it.
  const v = view();
  const empty = v && $('[data-empty]', v);
  if (empty && status === 'sending') empty.hidden = true;
  else if (empty) empty.remove();
  messagesList()?.appendChild(el);
  return el;
};

/** @param {HTMLElement} el */
const ensureReasoning = (el) => {
  let details = /** @type {HTMLDetailsElement | null} */ ($('details[data-reasoning]', el));
  if (!details) {
    details = document.createElement('details');
    details.className = 'reasoning';
    details.dataset.reasoning = '';
    const summary = document.createElement('summary');
    summary.dataset.reasoningSummary = '';
    const text = document.createElement('div');
    text.className = 'reasoning-text';
    text.dataset.reasoningText = '';
    details.append(summary, text);
    el.insertBefore(details, el.firstChild);
  }
  return details;
};

/** @param {HTMLElement} el @param {MessageState} st */
const thinkingNow = (el, st) => el.dataset.status === 'streaming' && !st.raw;

/** @param {HTMLElement} el @param {MessageState} st */
const renderReasoning = (el, st) => {
  if (!st.reasoning) return;
  const details = ensureReasoning(el);
  const text = /** @type {HTMLElement} */ ($('[data-reasoning-text]', details));
  if (text.textContent !== st.reasoning) text.textContent = st.reasoning;
  const summary = /** @type {HTMLElement} */ ($('summary', details));
  let label = 'Thought';
  if (thinkingNow(el, st)) label = 'Thinking…';
  else if (st.thoughtMs) label = `Thought for ${Math.max(1, Math.round(st.thoughtMs / 1000))} s`;
  if (summary.textContent !== label) summary.textContent = label;
  details.classList.toggle('thinking', label === 'Thinking…');
  // Live thinking: open while the model thinks (the text streams in view), folded once the answer
  // starts, unless the reader opened or closed it themselves.
  const thinking = thinkingNow(el, st);
  if (!st.readerToggled && (thinking || st.autoOpened) && details.open !== thinking) {
    details.open = thinking;
    st.autoOpened = thinking;
  }
  if (thinking) text.scrollTop = text.scrollHeight;
};

/**
 * A one-line note at the end of a message, kept in step with `text`: made when there is text,
 * removed when there is none. `hook` is its data attribute (`data-${hook}`).
 * @param {HTMLElement} el
 * @param {string} hook
 * @param {string} className
 * @param {string | undefined} text
 * @param {string} [role]
 */
const setNote = (el, hook, className, text, role) => {
  let note = $(`[data-${hook}]`, el);
  if (!text) {
    if (note) note.remove();
    return null;
  }
  if (!note) {
    note = document.createElement('p');
    note.className = className;
    note.setAttribute(`data-${hook}`, '');
    if (role) note.setAttribute('role', role);
    el.appendChild(note);
  }
  if (note.textContent !== text) note.textContent = text;
  return note;
};

/** @param {HTMLElement} el */
const renderStatusNote = (el) => {
  const status = el.dataset.status || '';
  const text =
    el.dataset.role !== 'assistant' ? undefined : STATUS_TEXT[status] || (status === 'complete' ? FINISH_TEXT[el.dataset.finishReason || ''] : undefined);
  setNote(el, 'status-note', 'status-note', text);
};

/** "Retrying 2/4…" on an answer whose model request is being retried, until its first piece or its end. @param {HTMLElement} el @param {MessageState} st */
export const renderRetry = (el, st) => {
  const retrying = el.dataset.retry && el.dataset.status === 'streaming' && st.seq === 0;
  if (!retrying) delete el.dataset.retry;
  const note = setNote(el, 'retry-note', 'retry-note', retrying ? `Retrying ${el.dataset.retry}…` : '', 'status');
  if (note) note.title = 'The model API did not answer; trying again.';
};

/** @param {HTMLElement} el */
export const renderMessage = (el) => {
  const st = stateOf(el);
  const content = $('[data-content]', el);
  if (!content) return;
  if (el.dataset.role !== 'assistant') content.textContent = st.raw;
  else if (el.dataset.status === 'streaming') renderStreaming(content, st);
  else renderFull(content, st.raw);
  content.dataset.md = 'rendered';
  renderReasoning(el, st);
  el.dataset.seq = String(st.seq);
  renderStatusNote(el);
  if (el.dataset.role === 'assistant') renderRetry(el, st);
  renderVersions(el);
  if (el.dataset.omittedTurns) noteOmitted(el, Number(el.dataset.omittedTurns));
  formatSizes(el);
  decorate(el);
};

// Pieces arrive many times a second; render each touched message at most once per animation frame.
/** @type {Set<HTMLElement>} */
const dirty = new Set();
let renderScheduled = false;
const flushRenders = () => {
  renderScheduled = false;
  const t0 = performance.now();
  const stick = nearBottom();
  for (const el of dirty) if (el.isConnected) renderMessage(el);
  dirty.clear();
  if (stick) scrollToBottom();
  else newText();
  const ms = performance.now() - t0;
  stats.frames += 1;
  stats.renderMs += ms;
  stats.maxFrameMs = Math.max(stats.maxFrameMs, ms);
};
/** @param {HTMLElement} el */
export const scheduleRender = (el) => {
  dirty.add(el);
  if (renderScheduled) return;
  renderScheduled = true;
  if (document.hidden) setTimeout(flushRenders, 200);
  else requestAnimationFrame(flushRenders);
};
/** An ended answer is drawn at once: a pending frame render of it is dropped. @param {HTMLElement} el */
export const unschedule = (el) => dirty.delete(el);

export const nearBottom = () => {
  const s = messagesList();
  return !s || s.scrollHeight - s.scrollTop - s.clientHeight < 80;
};
export const scrollToBottom = () => {
  const s = messagesList();
  if (s) s.scrollTop = s.scrollHeight;
};

/**
 * An error in words, on a message (`el`) or over the message box, with its raw detail folded.
 * @param {string} text
 * @param {HTMLElement | null} [el]
 * @param {string} [detail]
 */
export const showError = (text, el, detail) => {
  if (el && el.isConnected) {
    let note = $('[data-message-error]', el);
    if (!note) {
      note = document.createElement('div');
      note.className = 'message-error';
      note.setAttribute('role', 'alert');
      note.dataset.messageError = '';
      el.appendChild(note);
    }
    fillError(note, text, detail);
    return;
  }
  const v = view();
  const box = v && $('[data-form-error]', v);
  if (box) fillError(box, text, detail);
};
export const clearFormError = () => {
  const v = view();
  const box = v && $('[data-form-error]', v);
  if (box) box.textContent = '';
};

// ---- file chips

/** @param {ParentNode} root */
const formatSizes = (root) => {
  for (const s of $$('[data-size]', root)) s.textContent = formatSize(s.dataset.size);
};

/**
 * A list of file chips (name and size); `removable` adds a remove button to each.
 * @param {FileInfo[]} files
 * @param {boolean} removable
 */
export const chipList = (files, removable) => {
  const frag = document.createDocumentFragment();
  for (const f of files) {
    const li = document.createElement('li');
    li.className = 'chip';
    li.dataset.attachmentId = f.id;
    const name = document.createElement('span');
    name.className = 'chip-name';
    name.textContent = f.name;
    const size = document.createElement('span');
    size.className = 'chip-size';
    size.dataset.size = String(f.size);
    size.textContent = formatSize(f.size);
    li.append(name, ' ', size);
    if (removable) {
      const x = document.createElement('button');
      x.type = 'button';
      x.className = 'chip-remove';
      x.dataset.attachRemove = f.id;
      x.setAttribute('aria-label', `Remove ${f.name}`);
      x.textContent = '×';
      li.appendChild(x);
    }
    frag.appendChild(li);
  }
  return frag;
};

/** A sent message's file chips. @param {HTMLElement} el @param {FileInfo[]} files */
export const renderChips = (el, files) => {
  let ul = $('[data-message-attachments]', el);
  if (!ul) {
    ul = document.createElement('ul');
    ul.className = 'chips';
    ul.dataset.messageAttachments = '';
    const content = $('[data-content]', el);
    if (content) content.after(ul);
    else el.appendChild(ul);
  }
  ul.replaceChildren(chipList(files, false));
};

// ---- context note and versions

/** The note before an answer whose request left `n` older turns out: live (agent_response_start) or stored (data-omitted-turns). @param {HTMLElement} el @param {number} n */
export const noteOmitted = (el, n) => {
  const prev = el.previousElementSibling;
  let note = prev instanceof HTMLElement && prev.matches('[data-context-note]') ? prev : null;
  if (!(n > 0)) {
    delete el.dataset.omittedTurns;
    if (note) note.remove();
    return;
  }
  el.dataset.omittedTurns = String(n);
  if (note && note.dataset.contextNote === String(n)) return;
  if (!note) {
    note = document.createElement('p');
    note.className = 'context-note';
    note.setAttribute('role', 'note');
    el.before(note);
  }
  note.dataset.contextNote = String(n);
  note.textContent = `${n} older ${n === 1 ? 'turn was' : 'turns were'} left out of the context to fit the model's limit.`;
};

/** @param {HTMLElement} el */
export const versionsOf = (el) => [...(el.dataset.previousVersions || '').split(/\s+/).filter(Boolean), el.dataset.messageId || ''];

/** A message's action row (Copy, Edit, versions, Regenerate…). @param {HTMLElement} el */
export const actionsOf = (el) => ensureChild(el, 'data-message-actions', 'div', 'message-actions');

/** An answer streams in the shown chat: a user message's versions wait for it (switching would hide it). */
const somethingStreams = () => {
  const v = view();
  return !!(v && $('[data-message-id][data-role="assistant"][data-status="streaming"]', v));
};

/**
 * The ‹ n/m › switcher on a message with previous versions: a regenerated answer's, or an edited
 * user message's (an older version of it shows the answers and turns that followed it then).
 * @param {HTMLElement} el
 */
const renderVersions = (el) => {
  const all = versionsOf(el);
  let bar = $('[data-versions]', el);
  if (all.length < 2) {
    if (bar) bar.remove();
    return;
  }
  const row = actionsOf(el);
  if (!bar) {
    bar = document.createElement('span');
    bar.className = 'versions';
    bar.dataset.versions = '';
    bar.setAttribute('role', 'group');
    bar.setAttribute('aria-label', el.dataset.role === 'user' ? 'Versions of this message' : 'Versions of this answer');
    const prev = document.createElement('button');
    prev.type = 'button';
    prev.className = 'icon-button';
    prev.dataset.versionPrev = '';
    prev.setAttribute('aria-label', 'Previous version');
    prev.textContent = '‹';
    const label = document.createElement('span');
    label.dataset.versionLabel = '';
    const next = document.createElement('button');
    next.type = 'button';
    next.className = 'icon-button';
    next.dataset.versionNext = '';
    next.setAttribute('aria-label', 'Next version');
    next.textContent = '›';
    bar.append(prev, label, next);
    row.prepend(bar);
  }
  const idx = el.dataset.versionShown ? Number(el.dataset.versionShown) : all.length - 1;
  const label = /** @type {HTMLElement} */ ($('[data-version-label]', bar));
  label.textContent = `${idx + 1}/${all.length}`;
  const busy = el.dataset.status === 'streaming' || (el.dataset.role === 'user' && somethingStreams());
  /** @type {HTMLButtonElement} */ ($('[data-version-prev]', bar)).disabled = idx <= 0 || busy;
  /** @type {HTMLButtonElement} */ ($('[data-version-next]', bar)).disabled = idx >= all.length - 1;
};

/**
 * A stored message as `GET /api/messages/:id` answers it; an edited user message's comes with
 * `following` (what came after it in its version of the chat).
 * @typedef {{ id?: string, role?: string, content?: string, status?: string, following?: StoredMessage[] }} StoredMessage
 */

/** Older versions fetched once. @type {Map<string, StoredMessage>} */
const versionCache = new Map();

/**
 * An earlier version's messages after its user message, drawn read-only (no id, no actions: they
 * are not on the chat's current line), after a note that says so.
 * @param {HTMLElement} el the user message
 * @param {StoredMessage[]} following
 */
const showEarlierBranch = (el, following) => {
  const id = el.dataset.messageId || '';
  for (const old of $$(`[data-earlier-of="${CSS.escape(id)}"]`)) old.remove();
  // The current line after the message steps aside (kept, hidden) while the earlier one shows.
  for (let next = el.nextElementSibling; next; next = next.nextElementSibling) {
    if (!(next instanceof HTMLElement) || next.hidden) continue;
    next.hidden = true;
    next.dataset.hiddenFor = id;
  }
  const frag = document.createDocumentFragment();
  const note = document.createElement('p');
  note.className = 'earlier-note';
  note.setAttribute('role', 'note');
  note.dataset.earlierOf = id;
  note.dataset.earlierNote = '';
  note.textContent = following.length
    ? 'An earlier version of this conversation, read-only. Use › on the message above to return to the current one.'
    : 'An earlier version of this message, read-only; nothing followed it. Use › to return to the current one.';
  frag.appendChild(note);
  for (const m of following) {
    const article = document.createElement('article');
    article.className = 'message message-earlier';
    article.dataset.role = m.role === 'user' ? 'user' : 'assistant';
    article.dataset.earlierOf = id;
    article.setAttribute('aria-label', `${article.dataset.role} message, earlier version`);
    const content = document.createElement('div');
    content.className = 'content';
    if (article.dataset.role === 'user') content.textContent = m.content || '';
    else renderFull(content, m.content || '');
    article.appendChild(content);
    const status = m.role === 'assistant' && m.status ? STATUS_TEXT[m.status] : undefined;
    if (status) setNote(article, 'status-note', 'status-note', status);
    frag.appendChild(article);
  }
  el.after(frag);
};

/** Back to the current line after the user message `el`: the earlier branch goes, the current one shows again. @param {HTMLElement} el */
const hideEarlierBranch = (el) => {
  const id = el.dataset.messageId || '';
  for (const old of $$(`[data-earlier-of="${CSS.escape(id)}"]`)) old.remove();
  for (const kept of $$(`[data-hidden-for="${CSS.escape(id)}"]`)) {
    kept.hidden = false;
    delete kept.dataset.hiddenFor;
  }
};

/** @param {HTMLElement} el @param {number} idx */
export const showVersion = async (el, idx) => {
  const all = versionsOf(el);
  if (idx < 0 || idx >= all.length) return;
  const content = $('[data-content]', el);
  if (!content) return;
  const user = el.dataset.role === 'user';
  const chips = $('[data-message-attachments]', el);
  let old = $('[data-version-content]', el);
  if (idx === all.length - 1) {
    delete el.dataset.versionShown;
    if (old) old.remove();
    content.hidden = false;
    if (chips) chips.hidden = false;
    if (user) hideEarlierBranch(el);
    renderVersions(el);
    return;
  }
  const id = all[idx];
  let msg = versionCache.get(id);
  if (!msg) {
    try {
      const res = await fetch(`${BASE}/api/messages/${encodeURIComponent(id)}`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(String(res.status));
      msg = /** @type {StoredMessage} */ (await res.json());
      versionCache.set(id, msg);
    } catch (_) {
      showError('Could not load that version. Try again.', el);
      return;
    }
  }
  if (!old) {
    old = document.createElement('div');
    old.className = 'content content-version';
    old.dataset.versionContent = '';
    content.after(old);
  }
  old.dataset.versionId = id;
  // A user message is plain text; an answer is Markdown.
  if (user) old.textContent = msg.content || '';
  else renderFull(old, msg.content || '');
  content.hidden = true;
  // The current version's files are not the earlier one's.
  if (chips) chips.hidden = true;
  if (user) showEarlierBranch(el, msg.following || []);
  el.dataset.versionShown = String(idx);
  renderVersions(el);
};

/** Every user message showing an earlier version goes back to the current one (before sending). */
export const showCurrentVersions = () => {
  const v = view();
  if (!v) return;
  for (const el of $$('[data-message-id][data-role="user"][data-version-shown]', v)) void showVersion(el, versionsOf(el).length - 1);
};

/**
 * After an edit (`user_message` with `previous_versions`): the edited message and everything after
 * it leave the list (they are the new message's previous version now); `el`, the new message, gets
 * its switcher.
 * @param {Frame} frame
 * @param {HTMLElement} el
 */
export const replaceEditedBranch = (frame, el) => {
  const prev = frame.previous_versions || [];
  if (!prev.length) return;
  el.dataset.previousVersions = prev.join(' ');
  delete el.dataset.versionShown;
  const v = view();
  const old = v ? $(`[data-message-id="${CSS.escape(prev[prev.length - 1])}"]`, v) : null;
  if (old && old !== el && old.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) {
    for (let node = /** @type {Element | null} */ (old); node && node !== el;) {
      const next = node.nextElementSibling;
      node.remove();
      node = next;
    }
  }
  renderMessage(el);
};

/** Clicks on ‹ and ›. @param {Element} t @returns {boolean} */
export const versionClick = (t) => {
  const prev = t.closest('[data-version-prev]');
  const next = t.closest('[data-version-next]');
  const el = /** @type {HTMLElement | null} */ ((prev || next)?.closest('[data-message-id]') ?? null);
  if (!el) return false;
  const all = versionsOf(el);
  const idx = el.dataset.versionShown ? Number(el.dataset.versionShown) : all.length - 1;
  const pressed = /** @type {HTMLButtonElement} */ (prev || next);
  void showVersion(el, idx + (prev ? -1 : 1)).then(() => {
    // At the first or last version the pressed button is disabled: the keyboard stays on the switcher.
    if (pressed.disabled) {
      const other = /** @type {HTMLButtonElement | null} */ ($(prev ? '[data-version-next]' : '[data-version-prev]', el));
      if (other && !other.disabled) other.focus();
    }
    const shown = el.dataset.versionShown ? Number(el.dataset.versionShown) : all.length - 1;
    const current = shown === all.length - 1;
    announce(
      `Version ${shown + 1} of ${all.length}${current ? ', the current one' : el.dataset.role === 'user' ? ': an earlier version of the conversation, read-only' : ''}`,
    );
  });
  return true;
};

/** What Copy and Edit take from a message: the older version on show, or its own text. @param {HTMLElement} el */
export const rawOf = (el) => {
  const old = el.dataset.versionShown ? versionCache.get(versionsOf(el)[Number(el.dataset.versionShown)]) : null;
  return old ? old.content || '' : stateOf(el).raw;
};

/** A regenerated answer takes the old one's place in the list. @param {Frame} frame */
export const replaceOldVersion = (frame) => {
  const prev = frame.previous_versions || [];
  const id = frame.message_id || '';
  const v = view();
  let el = v ? $(`[data-message-id="${CSS.escape(id)}"]`, v) : null;
  const old = v ? $(`[data-message-id="${CSS.escape(prev[prev.length - 1] || '')}"]`, v) : null;
  if (!el && old) {
    el = document.createElement('article');
    el.className = 'message';
    el.dataset.messageId = id;
    el.dataset.role = 'assistant';
    el.dataset.status = 'streaming';
    el.dataset.seq = '0';
    el.setAttribute('aria-label', 'assistant message');
    const content = document.createElement('div');
    content.className = 'content';
    content.dataset.content = '';
    el.appendChild(content);
    old.replaceWith(el);
  }
  if (el) {
    el.dataset.previousVersions = prev.join(' ');
    delete el.dataset.versionShown;
  }
};
