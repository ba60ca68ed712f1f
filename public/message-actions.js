// @ts-check
/**
 * The everyday actions on messages: Copy on every message, Edit on the user's own (the text goes
 * back into the message box; sending it starts a new turn), an answer's model, time and tokens on
 * hover or focus, Continue on the last answer when the model cut it short at its length limit
 * (sends "Continue" as a new turn), and the "↓" jump-to-latest button while the reader is scrolled up.
 */
import { $, $$, api, ensureChild, readonly, view } from './chat-dom.js';
import { editText, sendMessage } from './chat-composer.js';
import { actionsOf, nearBottom, rawOf, scrollToBottom } from './chat-render.js';

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
    const b = button('Edit', 'editMessage', 'Put this message back in the box to change and send it again');
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
  if (wanted && !$('[data-continue]', wanted)) {
    const b = button('Continue', 'continue', 'Ask the model to go on where this answer stopped (a new message)');
    toolsOf(wanted).prepend(b);
  }
  updateJump();
};

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
    if (el) editText(rawOf(el));
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
