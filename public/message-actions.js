/*
 * The everyday actions on the chat page's messages, beside public/chat.js (which calls in):
 * Copy on every message, Edit on the user's own (the text goes back into the message box; sending
 * it starts a new turn), an answer's model, time and tokens on hover or focus, Continue on the last
 * answer when the model cut it short at its length limit (sends "Continue" as a new turn), and the
 * "↓" jump-to-latest button while the reader is scrolled up. Plain ES2020, no inline code (CSP).
 *
 * chat.js calls `init(api)` once, `decorate(el)` after rendering a message, `refresh(busy)` when the
 * message box is enabled or disabled, and `newText()` when an answer grew while scrolled up.
 */
(() => {
  'use strict';

  /** What chat.js lends: send(text), edit(text), rawOf(el), actionsOf(el), ensureChild(parent, attr, tag, className), nearBottom(), scrollToBottom(). */
  let api = null;

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const view = () => document.getElementById('chat-content');
  const readonly = () => document.body.hasAttribute('data-readonly');

  /** The text sent to continue an answer cut short at the length limit (a new turn). */
  const CONTINUE_TEXT = 'Continue';

  const button = (label, hook, title) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'button-small message-action';
    b.dataset[hook] = '';
    b.textContent = label;
    if (title) b.title = title;
    return b;
  };

  /** This module's part of a message's action row (chat.js owns the row, versions and Regenerate). */
  const toolsOf = (el) => api.ensureChild(api.actionsOf(el), 'data-message-tools', 'span', 'message-tools');

  const formatMs = (ms) => (ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);
  const n = (x) => Number(x || 0).toLocaleString('en');

  /** "deepseek-chat · 2.4 s · 130 tokens (42 in, 88 out)": what is known of an ended answer. */
  const metaText = (el) => {
    const parts = [];
    if (el.dataset.model) parts.push(el.dataset.model);
    const ms = Number(el.dataset.elapsedMs || 0);
    if (ms > 0) parts.push(formatMs(ms));
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

  const decorate = (el) => {
    if (!api || !el.dataset.messageId || el.dataset.status === 'streaming' || el.dataset.status === 'sending') return;
    const tools = toolsOf(el);
    if (!$('[data-copy-message]', tools)) {
      const label = el.dataset.role === 'user' ? 'Copy message' : 'Copy answer';
      const b = button('Copy', 'copyMessage', label);
      b.setAttribute('aria-label', label);
      tools.appendChild(b);
    }
    if (el.dataset.role === 'user' && !readonly() && !$('[data-edit-message]', tools)) {
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
          tools.parentElement.appendChild(meta);
        }
        if (meta.textContent !== text) meta.textContent = text;
      } else if (meta) meta.remove();
    }
  };

  /** Continue sits on the last answer only, when it was cut short at the length limit and nothing runs. */
  const refresh = (busy) => {
    const v = view();
    if (!v || !api || readonly()) return;
    const answers = $$('[data-message-id][data-role="assistant"]', v);
    const last = answers[answers.length - 1];
    const wanted =
      !busy && last && last.dataset.status === 'complete' && last.dataset.finishReason === 'length' && !last.dataset.versionShown ? last : null;
    for (const b of $$('[data-continue]', v)) if (b.closest('[data-message-id]') !== wanted) b.remove();
    if (wanted && !$('[data-continue]', wanted)) {
      const b = button('Continue', 'continue', 'Ask the model to go on where this answer stopped (a new message)');
      toolsOf(wanted).prepend(b);
    }
    updateJump();
  };

  // ---- jump to latest

  const jumpButton = () => (view() ? $('[data-jump-latest]', view()) : null);

  const updateJump = () => {
    const b = jumpButton();
    if (!b || !api) return;
    const away = !api.nearBottom();
    if (b.hidden === away) b.hidden = !away;
    if (!away) delete b.dataset.newText;
  };

  /** An answer grew while the reader is scrolled up: the button says new text is arriving. */
  const newText = () => {
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

  const copyMessage = async (b) => {
    const el = b.closest('[data-message-id]');
    if (!el || !api) return;
    const text = api.rawOf(el);
    if (await window.copyFromButton(b, text, 'Copy') && window.__chat) window.__chat.lastCopied = text;
  };

  document.addEventListener('click', (ev) => {
    const t = ev.target instanceof Element ? ev.target : null;
    if (!t || !api) return;
    const copy = t.closest('[data-copy-message]');
    if (copy) {
      void copyMessage(copy);
      return;
    }
    const edit = t.closest('[data-edit-message]');
    if (edit) {
      const el = edit.closest('[data-message-id]');
      if (el) api.edit(api.rawOf(el));
      return;
    }
    if (t.closest('[data-continue]')) {
      for (const b of $$('[data-continue]')) b.remove();
      api.send(CONTINUE_TEXT);
      return;
    }
    const jump = t.closest('[data-jump-latest]');
    if (jump) {
      api.scrollToBottom();
      jump.hidden = true;
      delete jump.dataset.newText;
      jump.setAttribute('aria-label', 'Jump to latest');
    }
  });

  window.ChatActions = {
    init(lent) {
      api = lent;
    },
    decorate,
    refresh,
    newText,
    CONTINUE_TEXT,
  };
})();
