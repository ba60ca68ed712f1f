// @ts-check
/**
 * The everyday actions on messages: Copy on every message, Edit on the user's own (in place: the
 * message becomes an editor with Cancel and Send; sending makes a new branch, `edit_of`, and the
 * message then shows the ‹ n/m › switcher), an answer's model, time and tokens on
 * hover or focus, Continue on the last answer when the model cut it short at its length limit
 * (sends "Continue" as a new turn), and the "↓" jump-to-latest button while the reader is scrolled up.
 */
import { $, $$, api, ensureChild, readonly, view } from './chat-dom.js';
import { autoGrow, busyNow, sendEdit, sendMessage, textarea } from './chat-composer.js';
import { actionsOf, nearBottom, rawOf, scrollToBottom, showVersion, versionsOf } from './chat-render.js';

/** The text sent to continue an answer cut short at the length limit (a new turn). */
export const CONTINUE_TEXT = 'Continue';

/** @param {string} label @param {string} hook @param {string} [title] */
const button = (label, hook, title) => {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'button-small message-action';
  b.dataset[hook] = '';
  b.textContent = label;
  if (title) b.title = title;
  return b;
};

/** This module's part of a message's action row (render.js owns the row and the versions, composer.js Regenerate). @param {HTMLElement} el */
const toolsOf = (el) => ensureChild(actionsOf(el), 'data-message-tools', 'span', 'message-tools');

/** @param {number} ms */
const formatMs = (ms) => (ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);
/** @param {unknown} x */
const n = (x) => Number(x || 0).toLocaleString('en');

/** "deepseek-chat · 2.4 s · 130 tokens (42 in, 88 out)": what is known of an ended answer. @param {HTMLElement} el */
const metaText = (el) => {
  const parts = [];
  if (el.dataset.model) parts.push(el.dataset.model);
  const ms = Number(el.dataset.elapsedMs || 0);
  if (ms > 0) parts.push(formatMs(ms));
  /** @type {Record<string, number> | null} */
  let usage = null;
  try {
    usage = el.dataset.answerUsage ? JSON.parse(el.dataset.answerUsage) : null;
  } catch (_) {
    usage = null;
  }
  if (usage && typeof usage === 'object' && usage.total_tokens) {
    parts.push(`${n(usage.total_tokens)} tokens (${n(usage.prompt_tokens)} in, ${n(usage.completion_tokens)} out)`);
  }
  return parts.join(' · ');
};

/** Copy and Edit on a stored message, an answer's details. @param {HTMLElement} el */
export const decorate = (el) => {
  if (readonly() || !el.dataset.messageId || el.dataset.status === 'streaming' || el.dataset.status === 'sending') return;
  const tools = toolsOf(el);
  if (!$('[data-copy-message]', tools)) {
    const label = el.dataset.role === 'user' ? 'Copy message' : 'Copy answer';
    const b = button('Copy', 'copyMessage', label);
    b.setAttribute('aria-label', label);
    tools.appendChild(b);
  }
  if (el.dataset.role === 'user' && !$('[data-edit-message]', tools)) {
    const b = button('Edit', 'editMessage', 'Change this message and send it again: the answers after it are kept as an earlier version');
    b.setAttribute('aria-label', 'Edit message');
    tools.appendChild(b);
  }
  if (el.dataset.role === 'assistant') {
    const text = metaText(el);
    let meta = $('[data-message-meta]', el);
    if (text) {
      if (!meta) {
        // Last in the row (CSS order), so showing it on hover moves no button.
        meta = document.createElement('span');
        meta.className = 'message-meta';
        meta.dataset.messageMeta = '';
        tools.parentElement?.appendChild(meta);
      }
      if (meta.textContent !== text) meta.textContent = text;
    } else if (meta) meta.remove();
  }
};

/** Continue sits on the last answer only, when it was cut short at the length limit and nothing runs. @param {boolean} busy */
export const refresh = (busy) => {
  const v = view();
  if (!v || readonly()) return;
  const answers = $$('[data-message-id][data-role="assistant"]', v);
  const last = answers[answers.length - 1];
  const wanted = !busy && last && last.dataset.status === 'complete' && last.dataset.finishReason === 'length' && !last.dataset.versionShown ? last : null;
  for (const b of $$('[data-continue]', v)) if (b.closest('[data-message-id]') !== wanted) b.remove();
  // An open editor sends once nothing streams or waits.
  for (const b of /** @type {HTMLButtonElement[]} */ ($$('[data-edit-send]', v))) b.disabled = busy;
  if (wanted && !$('[data-continue]', wanted)) {
    const b = button('Continue', 'continue', 'Ask the model to go on where this answer stopped (a new message)');
    toolsOf(wanted).prepend(b);
  }
  updateJump();
};

// ---- edit in place

/**
 * Opens the user message `el` for editing in place (one editor at a time): its text in a box with
 * Cancel and Send; Enter sends, Shift+Enter is a new line, Esc cancels. An earlier version on show
 * goes back to the current one first (the edit replaces the current line), keeping `text`.
 * @param {HTMLElement} el
 * @param {string} text
 */
export const openEditor = (el, text) => {
  const v = view();
  if (v) for (const other of $$('[data-editing]', v)) if (other !== el) closeEditor(other, false);
  if (el.dataset.versionShown) void showVersion(el, versionsOf(el).length - 1);
  const content = $('[data-content]', el);
  if (!content) return;
  let box = $('[data-edit-box]', el);
  if (!box) {
    box = document.createElement('div');
    box.className = 'edit-box';
    box.dataset.editBox = '';
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', 'Edit your message');
    const ta = document.createElement('textarea');
    ta.className = 'edit-text';
    ta.dataset.editText = '';
    ta.rows = 2;
    ta.setAttribute('aria-label', 'Edit message');
    const hint = document.createElement('p');
    hint.className = 'edit-hint';
    hint.textContent = 'Sending starts a new branch here; the answers after this message stay readable as an earlier version (‹ ›).';
    hint.id = `edit-hint-${el.dataset.messageId || ''}`;
    ta.setAttribute('aria-describedby', hint.id);
    const row = document.createElement('div');
    row.className = 'edit-buttons';
    const cancel = button('Cancel', 'editCancel');
    const send = button('Send', 'editSend');
    send.classList.add('button-primary');
    send.setAttribute('aria-label', 'Send edited message');
    send.disabled = busyNow();
    row.append(cancel, send);
    box.append(ta, hint, row);
    content.after(box);
  }
  content.hidden = true;
  el.dataset.editing = '';
  const ta = /** @type {HTMLTextAreaElement} */ ($('[data-edit-text]', box));
  ta.value = text;
  autoGrow(ta);
  ta.focus();
  ta.setSelectionRange(text.length, text.length);
};

/** Closes `el`'s editor; `refocus` puts the keyboard back on its Edit button. @param {HTMLElement} el @param {boolean} refocus */
const closeEditor = (el, refocus) => {
  $('[data-edit-box]', el)?.remove();
  const content = $('[data-content]', el);
  if (content) content.hidden = !!el.dataset.versionShown;
  delete el.dataset.editing;
  const edit = /** @type {HTMLElement | null} */ ($('[data-edit-message]', el));
  if (refocus && edit) edit.focus();
};

/** Sends the open editor of `el`: the new text as a new branch in its place. @param {HTMLElement} el */
const submitEdit = (el) => {
  const ta = /** @type {HTMLTextAreaElement | null} */ ($('[data-edit-text]', el));
  if (!ta || !ta.value.trim()) return;
  if (!sendEdit(el, ta.value)) return;
  closeEditor(el, false);
  textarea()?.focus();
};

document.addEventListener('keydown', (ev) => {
  const t = ev.target;
  if (ev.defaultPrevented || !(t instanceof HTMLTextAreaElement) || !t.matches('[data-edit-text]')) return;
  const el = /** @type {HTMLElement | null} */ (t.closest('[data-message-id]'));
  if (!el) return;
  if (ev.key === 'Escape') {
    ev.preventDefault();
    closeEditor(el, true);
  } else if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    submitEdit(el);
  }
});

document.addEventListener('input', (ev) => {
  if (ev.target instanceof HTMLTextAreaElement && ev.target.matches('[data-edit-text]')) autoGrow(ev.target);
});

// ---- jump to latest

const jumpButton = () => {
  const v = view();
  return v ? $('[data-jump-latest]', v) : null;
};

const updateJump = () => {
  const b = jumpButton();
  if (!b) return;
  const away = !nearBottom();
  if (b.hidden === away) b.hidden = !away;
  if (!away) delete b.dataset.newText;
};

/** An answer grew while the reader is scrolled up: the button says new text is arriving. */
export const newText = () => {
  const b = jumpButton();
  updateJump();
  if (b && !b.hidden && b.dataset.newText === undefined) {
    b.dataset.newText = '';
    b.setAttribute('aria-label', 'Jump to latest: new text below');
  }
};

document.addEventListener(
  'scroll',
  (ev) => {
    if (ev.target instanceof Element && ev.target.matches('[data-messages]')) updateJump();
  },
  true,
);

// ---- clicks

/** @param {HTMLElement} b */
const copyMessage = async (b) => {
  const el = /** @type {HTMLElement | null} */ (b.closest('[data-message-id]'));
  if (!el) return;
  const text = rawOf(el);
  if (await window.copyFromButton(b, text, 'Copy')) api.lastCopied = text;
};

/** Clicks of the message actions; true when handled. @param {Element} t */
export const actionClick = (t) => {
  const copy = /** @type {HTMLElement | null} */ (t.closest('[data-copy-message]'));
  if (copy) {
    void copyMessage(copy);
    return true;
  }
  const edit = t.closest('[data-edit-message]');
  if (edit) {
    const el = /** @type {HTMLElement | null} */ (edit.closest('[data-message-id]'));
    if (el) openEditor(el, rawOf(el));
    return true;
  }
  const editing = /** @type {HTMLElement | null} */ (t.closest('[data-editing]'));
  if (editing && t.closest('[data-edit-cancel]')) {
    closeEditor(editing, true);
    return true;
  }
  if (editing && t.closest('[data-edit-send]')) {
    submitEdit(editing);
    return true;
  }
  if (t.closest('[data-continue]')) {
    for (const b of $$('[data-continue]')) b.remove();
    sendMessage(CONTINUE_TEXT);
    return true;
  }
  const jump = t.closest('[data-jump-latest]');
  if (jump instanceof HTMLElement) {
    scrollToBottom();
    jump.hidden = true;
    delete jump.dataset.newText;
    jump.setAttribute('aria-label', 'Jump to latest');
    return true;
  }
  return false;
};
