/*
 * The chat page's one script: a single WebSocket kept across HTMX swaps, rendering of streamed and
 * stored answers (marked + DOMPurify + highlight.js), the message box and the chat list. Wire
 * contract: docs/protocol.md (WebSocket frames and the page hooks). Plain ES2020, no build step, no
 * inline code (the CSP forbids it).
 */
(() => {
  'use strict';

  /**
   * Timings. Tests may shorten them by defining `window.__chatTuning` before this script runs
   * (numbers only, unknown keys ignored); the socket's own (backoff, pings) are read by page.js.
   */
  const T = {
    ackTimeoutMs: 60000,
    /** 1: re-parse only the open tail of a streaming answer per frame; 0: the whole text (for measuring). */
    incrementalRender: 1,
  };
  if (window.__chatTuning && typeof window.__chatTuning === 'object') {
    for (const [k, v] of Object.entries(window.__chatTuning)) if (k in T && typeof v === 'number') T[k] = v;
  }

  /** Where the server mounted the chat ('' when it owns the site), its socket and its sign-in page. */
  const BASE = document.documentElement.dataset.basePath || '';

  const ANNOUNCE_MAX_CHARS = 600;
  /** Code without a language is auto-detected only up to this size (highlightAuto tries them all). */
  const AUTO_DETECT_MAX_CHARS = 20000;
  /** While streaming, the last blocks stay open to change; everything before them is final. */
  const OPEN_BLOCKS = 2;

  /** Every error code of docs/protocol.md as a sentence a reader can act on (the code and the server's words go in a folded "Details"). */
  const ERROR_TEXT = {
    invalid_json: 'The page sent something the server could not read. Reload the page and try again.',
    invalid_message: 'The server could not accept that message.',
    unknown_type: 'The page and the server do not agree on what was sent. Reload the page.',
    model_not_configured: 'The server has no model API key yet (DEEPSEEK_API_KEY), so nothing can be answered. Ask whoever runs it to set one.',
    rate_limited: 'Too many messages. Please wait a moment.',
    upstream_auth: "The model service refused the server's API key. Whoever runs the server needs to check it.",
    upstream_quota: 'The model account has run out of balance. Whoever runs the server needs to top it up.',
    upstream_rate_limited: 'The model service is busy right now. Try again in a minute.',
    upstream_unavailable: 'The model service is not reachable right now. Try again in a minute.',
    upstream_timeout: 'The model stopped responding. Try again.',
    upstream_interrupted: 'The answer broke off. Try again.',
    upstream_bad_response: 'The model service sent something that is not an answer. Try again.',
    limit_exceeded: 'That goes over one of your limits.',
    not_found: 'That chat or message no longer exists.',
    github_error: 'GitHub could not be read for this.',
    internal: 'Something went wrong on the server. Try again.',
  };

  /**
   * A refused field (the error frame's `field`, docs/protocol.md) in words: what to fix, not
   * `options.temperature: …`. `setting` names the settings field it belongs to, if any.
   */
  const fieldProblem = (field, message) => {
    const most = /at most ([\d,]+)/.exec(message || '');
    switch (field) {
      case 'options.temperature':
        return { setting: 'temperature', text: 'Temperature must be a number from 0 to 2.' };
      case 'options.max_tokens':
        return {
          setting: 'max_tokens',
          text: most ? `Max tokens can be at most ${most[1]} on this server.` : 'Max tokens must be a whole number of at least 1.',
        };
      case 'options.model':
        return { setting: 'model', text: 'That model is not available here. Pick another one in the model menu.' };
      case 'options.system_prompt':
        return { setting: 'system_prompt', text: 'The system prompt is too long: shorten it.' };
      case 'options.thinking':
        return { setting: 'thinking', text: 'Thinking must be on or off.' };
      case 'content':
        return { text: 'The message must be 1 to 32,000 characters: shorten it.' };
      case 'attachments':
        return { text: 'An attached file can no longer be used. Remove it and attach it again.' };
      case 'chat_id':
        return { text: 'This chat no longer exists. Start a new chat.' };
      default:
        return null;
    }
  };

  /** An error frame as { text, detail, setting? }: the sentence to show and the raw code and message to fold away. */
  const describeError = (frame) => {
    const detail = [frame.code, frame.message].filter(Boolean).join(': ');
    if (frame.code === 'invalid_message' && frame.field) {
      const f = fieldProblem(frame.field, frame.message);
      if (f) return { ...f, detail };
    }
    if (frame.code === 'rate_limited' && frame.retry_after_ms) {
      return { text: `${ERROR_TEXT.rate_limited} Try again in ${Math.ceil(frame.retry_after_ms / 1000)} s.`, detail };
    }
    // A limit's own message names the limit in words ("at most 5 files per message"): say it.
    if (frame.code === 'limit_exceeded' && frame.message) return { text: `${ERROR_TEXT.limit_exceeded} ${sentence(frame.message)}`, detail };
    return { text: ERROR_TEXT[frame.code] || 'Something went wrong. Try again.', detail };
  };

  /** The server's words as a sentence (first letter up, a full stop at the end). */
  const sentence = (text) => {
    const t = String(text || '').trim();
    if (!t) return '';
    const s = t[0].toUpperCase() + t.slice(1);
    return /[.!?]$/.test(s) ? s : `${s}.`;
  };

  const STATUS_TEXT = {
    stopped: 'Stopped',
    interrupted: 'Interrupted: the answer broke off',
    error: 'The model could not answer',
  };

  /** A complete answer the model cut short (its finish_reason), so it is not passed off as whole. */
  const FINISH_TEXT = {
    length: 'Cut short: the answer reached its length limit',
    content_filter: "Cut short by the model provider's content filter",
  };

  /** Render costs, for tests and for measuring (read `window.__chat.stats` in the console). */
  const stats = { frames: 0, renderMs: 0, maxFrameMs: 0, parsedChars: 0, fullRenders: 0, committedBlocks: 0 };

  // ---------------------------------------------------------------- Markdown

  const escapeHtml = (s) =>
    String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

  const SAFE_HREF = /^(https?:|mailto:)/i;

  /** One Markdown setup for stored and streamed text alike: the same input gives the same HTML. */
  const markdown = (() => {
    if (!window.marked || !window.DOMPurify) return null;
    const instance = new window.marked.Marked({ gfm: true, breaks: false, async: false });
    instance.use({
      renderer: {
        // Raw HTML in an answer is shown as text: a chat about code quotes tags far more often than
        // it means them, and it keeps the sanitizer a second line of defence, not the only one.
        html: ({ text }) => escapeHtml(text),
        // Remote images would leak the reader's address to whoever the model names; link them instead.
        image: ({ href, text }) => `<a href="${escapeHtml(href || '')}">${escapeHtml(text || href || 'image')}</a>`,
      },
    });
    const purify = window.DOMPurify;
    purify.addHook('afterSanitizeAttributes', (node) => {
      if (node.nodeName !== 'A') return;
      const href = (node.getAttribute('href') || '').trim();
      if (href && SAFE_HREF.test(href)) {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer');
      } else {
        node.removeAttribute('href');
      }
    });
    const options = {
      USE_PROFILES: { html: true },
      FORBID_TAGS: ['style', 'img', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'svg', 'math'],
      FORBID_ATTR: ['style', 'id', 'name'],
      RETURN_DOM_FRAGMENT: true,
    };
    return {
      /** Markdown → sanitized DocumentFragment. */
      fragment(src) {
        stats.parsedChars += src.length;
        return purify.sanitize(instance.parse(src || ''), options);
      },
      /** Tokens from `lex` → sanitized DocumentFragment (no second lexing pass). */
      fromTokens(tokens, links) {
        const list = tokens.slice();
        list.links = links || Object.create(null);
        return purify.sanitize(instance.parser(list), options);
      },
      lex(src) {
        stats.parsedChars += src.length;
        return instance.lexer(src);
      },
    };
  })();

  // ---------------------------------------------------------------- Code blocks

  const hljs = window.hljs || null;
  if (hljs) hljs.configure({ ignoreUnescapedHTML: true, throwUnescapedHTML: false });

  const languageOf = (code) => {
    const m = /(?:^|\s)language-([\w+#.-]+)/.exec(code.className);
    return m ? m[1].toLowerCase() : '';
  };

  /** Highlights one `code` element in place; `auto` allows guessing a language that is not named. */
  const highlight = (code, auto) => {
    if (!hljs) return '';
    const named = languageOf(code);
    const text = code.textContent;
    let result = null;
    try {
      if (named && hljs.getLanguage(named)) result = hljs.highlight(text, { language: named, ignoreIllegals: true });
      else if (!named && auto && text.length <= AUTO_DETECT_MAX_CHARS) result = hljs.highlightAuto(text);
    } catch (_) {
      result = null;
    }
    // highlight.js escapes the text it is given; its output holds only its own spans.
    if (result && result.value) code.innerHTML = result.value;
    code.classList.add('hljs');
    if (result && result.language && !named) code.classList.add(`language-${result.language}`);
    return named || (result && result.relevance > 3 ? result.language : '') || '';
  };

  /** Wraps each `pre` with a header holding the language and a Copy button; highlights the code. */
  const decorateCode = (root, auto) => {
    for (const pre of Array.from(root.querySelectorAll('pre'))) {
      const code = pre.querySelector('code');
      if (!code || (pre.parentElement && pre.parentElement.classList.contains('code-block'))) continue;
      const lang = highlight(code, auto);
      const block = document.createElement('div');
      block.className = 'code-block';
      const head = document.createElement('div');
      head.className = 'code-head';
      const label = document.createElement('span');
      label.className = 'code-lang';
      label.textContent = lang || 'text';
      const copy = document.createElement('button');
      copy.type = 'button';
      copy.className = 'code-copy';
      copy.dataset.copyCode = '';
      copy.setAttribute('aria-label', `Copy ${lang ? `${lang} ` : ''}code`);
      copy.textContent = 'Copy';
      head.append(label, copy);
      pre.replaceWith(block);
      block.append(head, pre);
    }
  };

  const copyCode = async (button) => {
    const block = button.closest('.code-block');
    const code = block && block.querySelector('pre code');
    if (!code) return;
    const text = code.textContent;
    if (await window.copyFromButton(button, text, 'Copy')) api.lastCopied = text;
  };

  // ---------------------------------------------------------------- Rendering

  /** The whole text at once: stored messages, and every answer once it has ended. */
  const renderFull = (content, raw) => {
    if (!markdown) {
      content.textContent = raw;
      return;
    }
    const frag = markdown.fragment(raw);
    decorateCode(frag, true);
    content.replaceChildren(frag);
    stats.fullRenders += 1;
  };

  /**
   * An answer while it streams. The text is cut at block boundaries: blocks that can no longer change
   * (all but the last OPEN_BLOCKS) are rendered once and kept; only the open tail is parsed again on
   * each frame. The end frame renders the whole text with renderFull, so the final HTML is exactly the
   * stored one even where a later block would have changed an earlier one (a list that resumes, a
   * reference link defined further down).
   */
  const renderStreaming = (content, st) => {
    if (!markdown) {
      content.textContent = st.raw;
      return;
    }
    const r = st.render;
    if (content.childNodes.length < r.frozenNodes || r.committed > st.raw.length) {
      r.committed = 0;
      r.frozenNodes = 0;
      content.replaceChildren();
    }
    while (content.childNodes.length > r.frozenNodes) content.lastChild.remove();
    if (!(r.incremental && T.incrementalRender)) {
      if (r.committed) {
        r.committed = 0;
        r.frozenNodes = 0;
        content.replaceChildren();
      }
      const frag = markdown.fragment(st.raw);
      decorateCode(frag, false);
      content.appendChild(frag);
      return;
    }
    const tail = st.raw.slice(r.committed);
    let tokens = markdown.lex(tail);
    if (tokens.links && Object.keys(tokens.links).length) {
      // A reference definition changes text above it: render the whole text from now on.
      r.incremental = false;
      renderStreaming(content, st);
      return;
    }
    const blocks = [];
    tokens.forEach((t, i) => t.type !== 'space' && blocks.push(i));
    if (blocks.length > OPEN_BLOCKS) {
      const upto = blocks[blocks.length - OPEN_BLOCKS];
      const done = tokens.slice(0, upto);
      const chunk = done.map((t) => t.raw).join('');
      if (chunk && tail.startsWith(chunk)) {
        const frag = markdown.fromTokens(done, tokens.links);
        decorateCode(frag, true);
        content.appendChild(frag);
        r.frozenNodes = content.childNodes.length;
        r.committed += chunk.length;
        stats.committedBlocks += blocks.filter((i) => i < upto).length;
        tokens = tokens.slice(upto);
      }
    }
    const frag = markdown.fromTokens(tokens, null);
    // The open tail is re-rendered every frame: highlight named languages, guess only once it is final.
    decorateCode(frag, false);
    content.appendChild(frag);
  };

  // ---------------------------------------------------------------- DOM helpers

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const view = () => document.getElementById('chat-content');
  const shownChatId = () => (view() && view().dataset.chatId) || '';
  const cssEscape = (s) => (window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, '\\$&'));
  const messageEl = (id) => (view() ? $(`[data-message-id="${cssEscape(id)}"]`, view()) : null);
  const isShown = (frame) => !!frame.chat_id && frame.chat_id === shownChatId();

  /** Per message: raw Markdown and reasoning, last seq applied, frames waiting for a gap, timings. */
  const states = new WeakMap();

  const stateOf = (el) => {
    let st = states.get(el);
    if (!st) {
      const content = $('[data-content]', el);
      const reasoning = $('[data-reasoning-text]', el);
      st = {
        raw: content ? content.textContent : '',
        reasoning: reasoning ? reasoning.textContent : '',
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
  const storedThought = (id) => {
    try {
      return id ? Number(sessionStorage.getItem(THOUGHT_KEY + id)) || 0 : 0;
    } catch (_) {
      return 0;
    }
  };
  const keepThought = (id, ms) => {
    try {
      if (id) sessionStorage.setItem(THOUGHT_KEY + id, String(ms));
    } catch (_) {
      /* storage full or off: the summary just says "Thought" after a reload */
    }
  };

  const createMessage = (role, id, status) => {
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
    const empty = $('[data-empty]', view());
    if (empty) empty.hidden = true;
    $('[data-messages]', view()).appendChild(el);
    return el;
  };

  const ensureReasoning = (el) => {
    let details = $('details[data-reasoning]', el);
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

  const thinkingNow = (el, st) => el.dataset.status === 'streaming' && !st.raw;

  const renderReasoning = (el, st) => {
    if (!st.reasoning) return;
    const details = ensureReasoning(el);
    const text = $('[data-reasoning-text]', details);
    if (text.textContent !== st.reasoning) text.textContent = st.reasoning;
    const summary = $('summary', details);
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

  const renderStatusNote = (el) => {
    const text =
      el.dataset.role !== 'assistant'
        ? undefined
        : STATUS_TEXT[el.dataset.status] || (el.dataset.status === 'complete' ? FINISH_TEXT[el.dataset.finishReason] : undefined);
    setNote(el, 'status-note', 'status-note', text);
  };

  /** "Retrying 2/4…" on an answer whose model request is being retried, until its first piece or its end. */
  const renderRetry = (el, st) => {
    const retrying = el.dataset.retry && el.dataset.status === 'streaming' && st.seq === 0;
    if (!retrying) delete el.dataset.retry;
    const note = setNote(el, 'retry-note', 'retry-note', retrying ? `Retrying ${el.dataset.retry}…` : '', 'status');
    if (note) note.title = 'The model API did not answer; trying again.';
  };

  const renderMessage = (el) => {
    const st = stateOf(el);
    const content = $('[data-content]', el);
    if (el.dataset.role !== 'assistant') content.textContent = st.raw;
    else if (el.dataset.status === 'streaming') renderStreaming(content, st);
    else renderFull(content, st.raw);
    content.dataset.md = 'rendered';
    renderReasoning(el, st);
    el.dataset.seq = String(st.seq);
    renderStatusNote(el);
    if (el.dataset.role === 'assistant') renderRetry(el, st);
    if (el.dataset.role === 'assistant') renderVersions(el);
    if (el.dataset.omittedTurns) noteOmitted(el, Number(el.dataset.omittedTurns));
    formatSizes(el);
    if (actions) actions.decorate(el);
  };

  // Pieces arrive many times a second; render each touched message at most once per animation frame.
  const dirty = new Set();
  let renderScheduled = false;
  const flushRenders = () => {
    renderScheduled = false;
    const t0 = performance.now();
    const stick = nearBottom();
    for (const el of dirty) if (el.isConnected) renderMessage(el);
    dirty.clear();
    if (stick) scrollToBottom();
    else if (actions) actions.newText();
    const ms = performance.now() - t0;
    stats.frames += 1;
    stats.renderMs += ms;
    stats.maxFrameMs = Math.max(stats.maxFrameMs, ms);
  };
  const scheduleRender = (el) => {
    dirty.add(el);
    if (renderScheduled) return;
    renderScheduled = true;
    if (document.hidden) setTimeout(flushRenders, 200);
    else requestAnimationFrame(flushRenders);
  };

  const scroller = () => (view() ? $('[data-messages]', view()) : null);
  const nearBottom = () => {
    const s = scroller();
    return !s || s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  };
  const scrollToBottom = () => {
    const s = scroller();
    if (s) s.scrollTop = s.scrollHeight;
  };

  const announce = (text) => {
    const region = $('[data-announcer]');
    if (!region) return;
    region.textContent = '';
    // A fresh text node after a tick makes screen readers announce repeated text too.
    setTimeout(() => {
      region.textContent = text.length > ANNOUNCE_MAX_CHARS ? `${text.slice(0, ANNOUNCE_MAX_CHARS)}…` : text;
    }, 50);
  };
  /** Message ids already announced: a replayed end frame is not read out twice. */
  const announced = new Set();

  /**
   * Fills `box` with a sentence and, when there is one, the raw code and message in a folded
   * "Details" (for a bug report), never the code alone.
   */
  const fillError = (box, text, detail) => {
    const words = document.createElement('span');
    words.className = 'error-text';
    words.dataset.errorText = '';
    words.textContent = text;
    if (!detail) {
      box.replaceChildren(words);
      return;
    }
    const more = document.createElement('details');
    more.className = 'error-details';
    more.dataset.errorDetails = '';
    const summary = document.createElement('summary');
    summary.textContent = 'Details';
    const code = document.createElement('code');
    code.textContent = detail;
    more.append(summary, code);
    box.replaceChildren(words, ' ', more);
  };

  const showError = (text, el, detail) => {
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
    const box = view() && $('[data-form-error]', view());
    if (box) fillError(box, text, detail);
  };
  const clearFormError = () => {
    const box = view() && $('[data-form-error]', view());
    if (box) box.textContent = '';
  };

  // ---------------------------------------------------------------- Chat list

  const chatItem = (id) => $(`[data-chat-list] [data-chat-item="${cssEscape(id)}"]`);
  const chatLink = (id) => $(`[data-chat-list] a[href="${BASE}/chat/${cssEscape(id)}"]`);

  const markActiveChat = () => {
    const id = shownChatId();
    for (const a of $$('[data-chat-list] a')) {
      if (id && a.getAttribute('href') === `${BASE}/chat/${id}`) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  };

  /** The date group of a chat by its last activity, in the reader's own time zone. */
  const DAY_MS = 86400000;
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
  const groupChats = () => {
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

  /** A chat with new activity moves to the top (Today). */
  const touchChat = (id) => {
    const li = chatItem(id);
    const list = $('[data-chat-list]');
    if (!li || !list) return;
    li.dataset.updatedAt = new Date().toISOString();
    const first = $('[data-chat-item]', list);
    if (first !== li) list.insertBefore(li, first);
    groupChats();
  };

  const labelItem = (li, title) => {
    const name = title || 'Untitled chat';
    const rename = $('[data-chat-rename]', li);
    const del = $('[data-chat-delete]', li);
    if (rename) rename.setAttribute('aria-label', `Rename chat: ${name}`);
    if (del) del.setAttribute('aria-label', `Delete chat: ${name}`);
  };

  const addChatToList = (id, title) => {
    const list = $('[data-chat-list]');
    if (!list || chatLink(id)) return;
    const tpl = $('template[data-chat-item-template]');
    let li;
    let a;
    if (tpl) {
      li = tpl.content.firstElementChild.cloneNode(true);
      a = $('a', li);
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

  const setChatTitle = (id, title) => {
    if (!title) return;
    const a = chatLink(id);
    if (a) a.textContent = title;
    const li = chatItem(id);
    if (li) labelItem(li, title);
    if (id === shownChatId()) {
      const h = $('[data-chat-title]', view());
      if (h) h.textContent = title;
      view().dataset.pageTitle = title;
      document.title = title;
    }
  };

  const itemId = (li) => {
    if (li.dataset.chatItem) return li.dataset.chatItem;
    const a = $('a', li);
    return a ? (a.getAttribute('href') || '').replace(`${BASE}/chat/`, '') : '';
  };

  const api = {
    stats,
    lastCopied: null,
    tuning: T,
  };
  window.__chat = api;

  /** public/message-actions.js (loaded first): Copy, Edit, an answer's details, Continue, jump to latest. */
  const actions = window.ChatActions || null;

  const request = async (method, url, body) => {
    const res = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: body ? { 'Content-Type': 'application/json', Accept: 'application/json' } : { Accept: 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    return res;
  };

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

  // Rename: the link becomes a text field in place. Enter or leaving the field saves, Escape cancels.
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
    input.value = a.textContent.trim();
    input.dataset.renameInput = '';
    input.dataset.original = input.value;
    input.setAttribute('aria-label', 'Chat title (Enter saves, Escape cancels)');
    f.appendChild(input);
    li.classList.add('renaming');
    li.insertBefore(f, li.firstChild);
    input.focus();
    input.select();
  };

  const endRename = (li, refocus) => {
    const f = $('[data-rename-form]', li);
    if (f) f.remove();
    li.classList.remove('renaming');
    if (refocus) {
      const b = $('[data-chat-rename]', li);
      if (b) b.focus();
    }
  };

  const saveRename = async (li, refocus) => {
    const input = $('[data-rename-input]', li);
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

  // Delete: an inline "Delete this chat?" with Delete and Cancel; Escape cancels. No blocking dialog.
  const askDelete = (li) => {
    if ($('[data-delete-confirm]', li)) return;
    endRename(li, false);
    itemNote(li, '');
    const box = document.createElement('div');
    box.className = 'chat-confirm';
    box.dataset.deleteConfirm = '';
    box.setAttribute('role', 'group');
    const title = ($('a', li) || {}).textContent || 'this chat';
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

  const cancelDelete = (li, refocus) => {
    const box = $('[data-delete-confirm]', li);
    if (box) box.remove();
    li.classList.remove('confirming');
    if (refocus) {
      const b = $('[data-chat-delete]', li);
      if (b) b.focus();
    }
  };

  const confirmDelete = async (li) => {
    const box = $('[data-delete-confirm]', li);
    if (!box || box.dataset.busy) return;
    box.dataset.busy = '1';
    for (const b of $$('button', box)) b.disabled = true;
    const id = itemId(li);
    try {
      const res = await request('DELETE', `${BASE}/api/chats/${encodeURIComponent(id)}`);
      if (!res.ok && res.status !== 404) throw new Error(String(res.status));
    } catch (_) {
      delete box.dataset.busy;
      for (const b of $$('button', box)) b.disabled = false;
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

  // ---------------------------------------------------------------- Composer

  /** Sends made from this page that have not started an answer yet, by their client id. */
  const pendingSends = new Map();

  const form = () => (view() ? $('form[data-chat-form]', view()) : null);
  const textarea = () => (form() ? $('textarea[name=content]', form()) : null);

  const streamingMessages = () =>
    view() ? $$('[data-role="assistant"][data-status="streaming"]', view()) : [];

  /** Enables or disables the message box; `refocus` returns the focus to it once it is free again. */
  const updateComposer = (refocus = false) => {
    const f = form();
    if (!f) return;
    const streaming = streamingMessages();
    let waiting = false;
    for (const p of pendingSends.values()) if (p.el.isConnected) waiting = true;
    const busy = waiting || streaming.length > 0;
    const ta = textarea();
    const send = $('[data-send]', f);
    const stop = $('[data-stop]', f);
    const hadFocus = !!f.contains(document.activeElement);
    if (ta) ta.disabled = busy;
    if (send) send.disabled = busy;
    if (stop) stop.hidden = streaming.length === 0;
    f.setAttribute('aria-busy', String(busy));
    refreshActions(busy);
    if (actions) actions.refresh(busy);
    if (refocus && !busy && ta) {
      const active = document.activeElement;
      if (hadFocus || !active || active === document.body) ta.focus();
    }
  };

  const autoGrow = (ta) => {
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight + 2, Math.round(window.innerHeight * 0.4))}px`;
  };

  const newClientId = () =>
    window.crypto && typeof crypto.randomUUID === 'function'
      ? crypto.randomUUID()
      : `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

  /** Sends the message box's text, or `text` (Continue) leaving whatever is in the box. */
  const sendMessage = (text) => {
    const ta = textarea();
    if (!ta || ta.disabled) return;
    const content = typeof text === 'string' ? text : ta.value;
    if (!content.trim()) return;
    if (noModel()) return;
    clearFormError();
    // Settings are checked before anything is sent: a wrong one is said next to its field.
    const problems = checkSettings();
    if (problems.length) {
      openSettings(problems[0].setting);
      showError(`Not sent: ${problems.map((x) => x.text).join(' ')} Your message is still in the box.`);
      return;
    }
    const id = newClientId();
    const chatId = shownChatId();
    const el = createMessage('user', null, 'sending');
    el.dataset.clientId = id;
    const st = stateOf(el);
    st.raw = content;
    renderMessage(el);
    const pending = { chatId, el, content, fromBox: typeof text !== 'string', options: null, files: [], acked: false, timer: setTimeout(() => giveUp(id), T.ackTimeoutMs) };
    pendingSends.set(id, pending);
    const frame = { type: 'user_message', id, content };
    if (chatId) frame.chat_id = chatId;
    const options = takeOptions();
    if (options) frame.options = options;
    pending.options = options;
    // Attachments waiting in the box belong to the draft there, not to a Continue.
    const files = typeof text === 'string' ? [] : takeAttachments();
    pending.files = files;
    if (files.length) {
      frame.attachments = files.map((f) => f.id);
      renderChips(el, files);
    }
    socket.send(frame, true);
    if (typeof text !== 'string') ta.value = '';
    autoGrow(ta);
    scrollToBottom();
    updateComposer();
  };

  const settleSend = (id) => {
    const p = pendingSends.get(id);
    if (!p) return null;
    clearTimeout(p.timer);
    pendingSends.delete(id);
    return p;
  };

  /**
   * A message the server refused is not left in the chat as a copy: it leaves the list, and its
   * text, files and changed settings go back where they came from, to fix and send again.
   */
  const takeBack = (p) => {
    if (p.el.isConnected) p.el.remove();
    const v = view();
    const empty = v && $('[data-empty]', v);
    if (empty && !$('[data-message-id], [data-client-id]', v)) empty.hidden = false;
    const ta = textarea();
    if (ta && p.fromBox && !ta.value.trim()) {
      ta.value = p.content;
      autoGrow(ta);
    }
    if (p.files && p.files.length) {
      pendingFiles = p.files.concat(pendingFiles.filter((f) => !p.files.some((g) => g.id === f.id)));
      renderPending();
    }
    if (p.options) for (const k of Object.keys(p.options)) changed.add(k);
  };

  const giveUp = (id) => {
    const p = settleSend(id);
    if (!p) return;
    if (!p.acked && p.el.isConnected) p.el.dataset.status = 'error';
    showError('The server did not answer. Please try again.', p.el.isConnected ? p.el : null);
    updateComposer();
  };

  const stopStreaming = () => {
    for (const el of streamingMessages()) socket.send({ type: 'stop', message_id: el.dataset.messageId }, true);
  };

  /**
   * Without a model key the notice above the box already says so: nothing is sent (no unanswered
   * message, no second error), the text stays in the box and the notice is read out again.
   */
  const noModel = () => {
    const notice = view() && $('[data-model-notice]', view());
    if (!notice) return false;
    notice.dataset.attention = '';
    if (!$('[data-model-notice-kept]', notice)) {
      const kept = document.createElement('span');
      kept.dataset.modelNoticeKept = '';
      kept.textContent = ' Your message was not sent; it is still in the box.';
      notice.appendChild(kept);
    }
    announce(notice.textContent.trim());
    return true;
  };

  /** Edit: a sent message's text back in the box, to change and send as a new turn. */
  const editText = (text) => {
    const ta = textarea();
    if (!ta) return;
    ta.value = text;
    autoGrow(ta);
    if (!ta.disabled) {
      ta.focus();
      ta.setSelectionRange(text.length, text.length);
    }
  };

  document.addEventListener('submit', (ev) => {
    const t = ev.target;
    if (t.matches('form[data-chat-form]')) {
      ev.preventDefault();
      sendMessage();
    } else if (t.matches('[data-rename-form]')) {
      ev.preventDefault();
      void saveRename(t.closest('li'), true);
    }
  });

  document.addEventListener('keydown', (ev) => {
    // Taken by a shortcut (public/shortcuts.js).
    if (ev.defaultPrevented) return;
    const t = ev.target;
    if (t instanceof HTMLTextAreaElement && t.name === 'content' && t.closest('form[data-chat-form]')) {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
        ev.preventDefault();
        sendMessage();
      }
      return;
    }
    if (ev.key !== 'Escape') return;
    // Esc closes the settings popover, focus back on its button.
    if (t instanceof Element && t.closest('[data-settings-panel]')) {
      ev.preventDefault();
      setSettingsOpen(false);
      const back = view() && $('[data-settings-toggle]', view());
      if (back) back.focus();
      return;
    }
    if (t instanceof Element && t.matches('[data-rename-input]')) {
      ev.preventDefault();
      endRename(t.closest('li'), true);
      return;
    }
    const confirm = t instanceof Element ? t.closest('[data-delete-confirm]') : null;
    if (confirm) {
      ev.preventDefault();
      cancelDelete(confirm.closest('li'), true);
      return;
    }
    const nav = $('#chat-nav');
    if (nav && nav.dataset.open === 'true') {
      setSidebarOpen(false);
      const toggle = $('[data-sidebar-toggle]');
      if (toggle) toggle.focus();
      return;
    }
    // Esc stops the answer that is streaming (as the Stop button does).
    if (streamingMessages().length && !(t instanceof Element && t.closest('dialog, [data-share-box], [data-settings-panel]'))) {
      ev.preventDefault();
      stopStreaming();
    }
  });

  // Leaving the title field saves it (as Enter does).
  document.addEventListener('focusout', (ev) => {
    const t = ev.target;
    if (t instanceof Element && t.matches('[data-rename-input]')) {
      const li = t.closest('li');
      setTimeout(() => {
        if (li.isConnected && $('[data-rename-input]', li) === t && !t.dataset.saving) void saveRename(li, false);
      }, 0);
    }
  });

  // Files pasted into the box or dropped on it go the way of the Attach button.
  document.addEventListener('paste', (ev) => {
    const t = ev.target;
    if (!(t instanceof Element) || !t.closest('form[data-chat-form]') || !ev.clipboardData) return;
    const files = Array.from(ev.clipboardData.files || []);
    if (!files.length) return;
    ev.preventDefault();
    void uploadFiles(files);
  });

  const dropZone = (ev) => (ev.target instanceof Element ? ev.target.closest('[data-drop-zone]') : null);
  const carriesFiles = (ev) => !!ev.dataTransfer && Array.from(ev.dataTransfer.types || []).includes('Files');
  for (const type of ['dragenter', 'dragover']) {
    document.addEventListener(type, (ev) => {
      const zone = dropZone(ev);
      if (!zone || !carriesFiles(ev)) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = 'copy';
      zone.dataset.dropping = '';
    });
  }
  document.addEventListener('dragleave', (ev) => {
    const zone = dropZone(ev);
    if (zone && !(ev.relatedTarget instanceof Node && zone.contains(ev.relatedTarget))) delete zone.dataset.dropping;
  });
  document.addEventListener('drop', (ev) => {
    const zone = dropZone(ev);
    if (!zone || !ev.dataTransfer) return;
    delete zone.dataset.dropping;
    const files = Array.from(ev.dataTransfer.files || []);
    if (!files.length) return;
    ev.preventDefault();
    void uploadFiles(files);
  });

  document.addEventListener('input', (ev) => {
    const t = ev.target;
    if (t instanceof HTMLTextAreaElement && t.name === 'content' && t.closest('form[data-chat-form]')) autoGrow(t);
    else if (t instanceof Element && t.matches('[data-search]')) onSearchInput(t);
    else if (t instanceof Element && t.matches('[data-setting]')) onSettingInput(t);
  });

  document.addEventListener('click', (ev) => {
    const t = ev.target instanceof Element ? ev.target : null;
    if (!t) return;
    // The share/export menu closes on a choice or a click elsewhere.
    const menu = $('details[data-chat-menu][open]');
    if (menu && (!menu.contains(t) || t.closest('.menu-item'))) menu.open = false;
    // So does the settings popover (a click elsewhere; what was typed stays).
    const panel = view() && $('[data-settings-panel]:not([hidden])', view());
    if (panel && !panel.contains(t) && !t.closest('[data-settings-toggle]')) setSettingsOpen(false);
    if (t.closest('[data-stop]')) {
      stopStreaming();
      return;
    }
    const summary = t.closest('[data-reasoning-summary]');
    if (summary) {
      const el = summary.closest('[data-message-id]');
      if (el) stateOf(el).readerToggled = true;
    }
    const copy = t.closest('[data-copy-code]');
    if (copy) {
      void copyCode(copy);
      return;
    }
    if (featureClick(t)) return;
    const suggestion = t.closest('[data-suggestion]');
    if (suggestion) {
      // The text goes in the box to be read, changed and sent; nothing is sent for the reader.
      const ta = textarea();
      if (ta && !ta.disabled) {
        ta.value = suggestion.getAttribute('data-suggestion') || '';
        autoGrow(ta);
        ta.focus();
        ta.setSelectionRange(ta.value.length, ta.value.length);
        updateComposer();
      }
      return;
    }
    const item = t.closest('[data-chat-list] li');
    if (item) {
      if (t.closest('[data-chat-rename]')) return startRename(item);
      if (t.closest('[data-chat-delete]')) return askDelete(item);
      if (t.closest('[data-confirm-delete]')) return void confirmDelete(item);
      if (t.closest('[data-cancel-delete]')) return cancelDelete(item, true);
    }
    const toggle = t.closest('[data-sidebar-toggle]');
    if (toggle) {
      setSidebarOpen(toggle.getAttribute('aria-expanded') !== 'true');
      return;
    }
    if (t.closest('#chat-nav a, [data-new-chat]')) {
      setSidebarOpen(false);
      return;
    }
    // A click anywhere else closes the sidebar sheet on small screens.
    const nav = $('#chat-nav');
    if (nav && nav.dataset.open === 'true' && !t.closest('#chat-nav')) setSidebarOpen(false);
  });

  const setSidebarOpen = (open) => {
    const toggle = $('[data-sidebar-toggle]');
    const nav = $('#chat-nav');
    if (toggle) {
      toggle.setAttribute('aria-expanded', String(open));
      const label = $('.visually-hidden', toggle);
      if (label) label.textContent = open ? 'Hide chats' : 'Show chats';
    }
    if (nav) nav.dataset.open = String(open);
  };

  // ---------------------------------------------------------------- Frames

  const applyPiece = (el, frame) => {
    const st = stateOf(el);
    if (frame.seq <= st.seq) return;
    if (frame.seq > st.seq + 1) {
      // A gap (we joined mid-stream or lost frames): hold this one and ask for the missing ones.
      st.waiting.set(frame.seq, frame);
      if (Date.now() - st.askedResume > 3000) {
        st.askedResume = Date.now();
        socket.send({ type: 'resume', message_id: frame.message_id, after_seq: st.seq });
      }
      return;
    }
    let next = frame;
    while (next) {
      if (next.type === 'agent_reasoning') st.reasoning += next.content || '';
      else {
        if (!st.raw && st.reasoning) markThoughtDone(el, st);
        st.raw += next.content || '';
      }
      st.seq = next.seq;
      st.waiting.delete(next.seq);
      next = st.waiting.get(st.seq + 1);
    }
    scheduleRender(el);
  };

  /** Thinking ended (the first answer piece, or the end): time it from the start frame we saw live. */
  const markThoughtDone = (el, st) => {
    if (st.thoughtMs || !st.startedAt || !st.reasoning) return;
    st.thoughtMs = Math.max(1, Date.now() - st.startedAt);
    keepThought(el.dataset.messageId, st.thoughtMs);
  };

  const assistantEl = (frame) => {
    let el = messageEl(frame.message_id);
    if (!el) {
      el = createMessage('assistant', frame.message_id, 'streaming');
      el.dataset.seq = '0';
      updateComposer();
    }
    return el;
  };

  const handlers = {
    connected() {
      socket.onConnected();
      resubscribe();
    },

    chat_created(frame) {
      addChatToList(frame.chat_id, frame.title);
      const p = frame.id && pendingSends.get(frame.id);
      if (p && p.chatId === '' && p.el.isConnected && shownChatId() === '') {
        p.chatId = frame.chat_id;
        view().dataset.chatId = frame.chat_id;
        const url = `${BASE}/chat/${frame.chat_id}`;
        // htmx restores history entries only when they carry its marker.
        history.replaceState({ htmx: true }, document.title, location.href);
        history.pushState({ htmx: true }, '', url);
        if (frame.title) setChatTitle(frame.chat_id, frame.title);
        showChatTools();
        markActiveChat();
      }
    },

    chat_updated(frame) {
      setChatTitle(frame.chat_id, frame.title);
      // A generated title was a model call of its own: its tokens count too.
      scheduleUsage();
    },

    user_message(frame) {
      touchChat(frame.chat_id);
      const p = frame.id ? pendingSends.get(frame.id) : null;
      if (p) p.acked = true;
      if (!isShown(frame) || messageEl(frame.message_id)) return;
      let el = p && p.el.isConnected ? p.el : null;
      if (el) {
        el.dataset.messageId = frame.message_id;
        el.dataset.status = 'complete';
        delete el.dataset.clientId;
        if (actions) actions.decorate(el);
      } else {
        el = createMessage('user', frame.message_id, 'complete');
        stateOf(el).raw = frame.content || '';
        if (Array.isArray(frame.attachments) && frame.attachments.length) renderChips(el, frame.attachments);
        renderMessage(el);
        scrollToBottom();
      }
    },

    agent_response_start(frame) {
      if (frame.id) settleSend(frame.id);
      if (isShown(frame)) {
        const stick = nearBottom();
        if (Array.isArray(frame.previous_versions) && frame.previous_versions.length) replaceOldVersion(frame);
        const el = assistantEl(frame);
        if (frame.model) el.dataset.model = frame.model;
        // A regenerated answer has its own count: the replaced one's note is updated or removed.
        if (frame.omitted_turns > 0 || frame.previous_versions) noteOmitted(el, frame.omitted_turns || 0);
        const st = stateOf(el);
        if (!st.startedAt && st.seq === 0) st.startedAt = Date.now();
        if (stick) scrollToBottom();
      }
      updateComposer();
    },

    agent_retry(frame) {
      if (!isShown(frame)) return;
      const el = assistantEl(frame);
      el.dataset.retry = `${frame.attempt}/${frame.max_attempts}`;
      renderRetry(el, stateOf(el));
    },

    agent_reasoning(frame) {
      if (isShown(frame)) applyPiece(assistantEl(frame), frame);
    },

    agent_response(frame) {
      if (isShown(frame)) applyPiece(assistantEl(frame), frame);
    },

    agent_response_end(frame) {
      if (frame.id) settleSend(frame.id);
      if (isShown(frame)) {
        const el = assistantEl(frame);
        const st = stateOf(el);
        if (typeof frame.reasoning === 'string') st.reasoning = frame.reasoning;
        if (!st.raw) markThoughtDone(el, st);
        st.raw = frame.content || '';
        if (typeof frame.seq === 'number') st.seq = Math.max(st.seq, frame.seq);
        st.waiting.clear();
        dirty.delete(el);
        const stick = nearBottom();
        el.dataset.status = frame.status || 'complete';
        if (frame.finish_reason) el.dataset.finishReason = frame.finish_reason;
        else delete el.dataset.finishReason;
        if (frame.usage && typeof frame.usage === 'object') el.dataset.answerUsage = JSON.stringify(frame.usage);
        if (st.startedAt && !el.dataset.elapsedMs) el.dataset.elapsedMs = String(Date.now() - st.startedAt);
        renderMessage(el);
        if (stick) scrollToBottom();
        if (!announced.has(frame.message_id)) {
          announced.add(frame.message_id);
          const text = $('[data-content]', el).textContent.trim();
          const label = frame.status && frame.status !== 'complete' ? `Answer ${frame.status}` : 'Answer finished';
          announce(text ? `${label}: ${text}` : label);
        }
      }
      updateComposer(true);
      refreshActions();
      scheduleUsage();
    },

    error(frame) {
      const problem = describeError(frame);
      const p = frame.id ? pendingSends.get(frame.id) : null;
      if (frame.chat_id && frame.chat_id !== shownChatId() && !(p && p.el.isConnected)) return;
      const target = (frame.message_id && messageEl(frame.message_id)) || null;
      if (p && !frame.message_id) {
        // The send was refused before any answer started.
        settleSend(frame.id);
        if (!p.acked) {
          takeBack(p);
          if (problem.setting) openSettings(problem.setting, problem.text);
          showError(`Not sent: ${problem.text}${p.fromBox ? ' Your message is still in the box.' : ''}`, null, problem.detail);
          updateComposer(true);
          return;
        }
      }
      showError(problem.text, target, problem.detail);
      updateComposer(true);
    },

    subscribed() {},
    pong() {},
  };

  // ---------------------------------------------------------------- Socket

  /** The page's one WebSocket (public/page.js): reconnects, watchdog, connection indicator. */
  const socket = window.PageSocket.create({
    tuning: window.__chatTuning,
    onFrame: (frame) => {
      const handler = handlers[frame.type];
      if (handler) handler(frame);
    },
    busy: () => streamingMessages().length > 0 || pendingSends.size > 0,
    onClose: (ev) => {
      if (ev.code === 1009) showError('That message was too large for the server.');
    },
  });

  /** After (re)connecting or a swap: watch the shown chat and resume every answer still streaming. */
  const resubscribe = () => {
    const chatId = shownChatId();
    if (chatId) socket.send({ type: 'subscribe', chat_id: chatId });
    for (const el of streamingMessages()) {
      const st = stateOf(el);
      st.askedResume = Date.now();
      socket.send({ type: 'resume', message_id: el.dataset.messageId, after_seq: st.seq });
    }
  };

  // ---------------------------------------------------------------- Features: models, settings, files, versions, search, share, import, usage

  const formatSize = (n) => {
    const b = Number(n) || 0;
    if (b < 1024) return `${b} B`;
    if (b < 1024 * 1024) return `${(b / 1024).toFixed(b < 10240 ? 1 : 0)} KB`;
    return `${(b / 1048576).toFixed(1)} MB`;
  };
  const formatSizes = (root) => {
    for (const s of $$('[data-size]', root)) s.textContent = formatSize(s.dataset.size);
  };

  /** A list of file chips (name and size); `onRemove` adds a remove button to each. */
  const chipList = (files, onRemove) => {
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
      if (onRemove) {
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

  const renderChips = (el, files) => {
    let ul = $('[data-message-attachments]', el);
    if (!ul) {
      ul = document.createElement('ul');
      ul.className = 'chips';
      ul.dataset.messageAttachments = '';
      const content = $('[data-content]', el);
      if (content) content.after(ul);
      else el.appendChild(ul);
    }
    ul.replaceChildren(chipList(files, null));
  };

  // Composer choices live for the page (the composer is swapped with each chat); only what the user
  // changed since the last send goes out as `options`, so a chat's stored settings are not overwritten.
  const prefs = { model: '', thinking: true, temperature: '', max_tokens: '', system_prompt: '' };
  const changed = new Set();
  let modelList = null;
  let defaultModel = '';
  /** Uploaded files waiting for the next message. */
  let pendingFiles = [];

  const loadModels = async () => {
    try {
      const res = await fetch(`${BASE}/api/models`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (!res.ok) return;
      const body = await res.json();
      defaultModel = body.default || '';
      modelList = (body.models || []).map((m) => m.id).filter((id) => typeof id === 'string');
      if (defaultModel && !modelList.includes(defaultModel)) modelList.unshift(defaultModel);
      const v = view();
      if (v) fillModels(v);
    } catch (_) {
      /* the picker keeps the default */
    }
  };

  const fillModels = (root) => {
    const select = $('[data-model-picker]', root);
    if (!select || !modelList) return;
    select.replaceChildren();
    for (const id of modelList) {
      const o = document.createElement('option');
      o.value = id;
      o.textContent = id === defaultModel ? `${id} (default)` : id;
      select.appendChild(o);
    }
    select.value = prefs.model || defaultModel;
  };

  /** A stored chat's own settings win over the choices carried from the previous chat. */
  const adoptChatSettings = (root) => {
    const section = root.matches && root.matches('[data-chat-settings]') ? root : $('[data-chat-settings]', root);
    let stored = null;
    try {
      stored = section && section.dataset.chatSettings ? JSON.parse(section.dataset.chatSettings) : null;
    } catch (_) {
      stored = null;
    }
    if (!stored || typeof stored !== 'object') return;
    for (const key of ['model', 'temperature', 'max_tokens', 'system_prompt']) {
      prefs[key] = stored[key] === undefined || stored[key] === null ? '' : String(stored[key]);
    }
    prefs.thinking = stored.thinking !== false;
    changed.clear();
  };

  const hydrateComposerTools = (root) => {
    adoptChatSettings(root);
    fillModels(root);
    const think = $('[data-thinking]', root);
    if (think) think.checked = prefs.thinking;
    for (const input of $$('[data-setting]', root)) input.value = prefs[input.dataset.setting] || '';
    renderPending();
  };

  const onSettingInput = (input) => {
    prefs[input.dataset.setting] = input.value;
    changed.add(input.dataset.setting);
    // Said as it is typed, next to the field; a fixed field clears its message.
    showSettingProblem(input.dataset.setting, settingProblem(input));
  };

  /** What is wrong with one settings field, in words, or '' (empty means the server default). */
  const settingProblem = (input) => {
    const key = input.dataset.setting;
    const raw = input.value.trim();
    const bad = input.validity && input.validity.badInput;
    if (key === 'temperature') {
      if (bad) return 'Temperature must be a number, like 0.7.';
      if (raw === '') return '';
      const n = Number(raw);
      if (!Number.isFinite(n)) return 'Temperature must be a number, like 0.7.';
      if (n < 0 || n > 2) return `Temperature must be from 0 to 2 (${raw} is ${n < 0 ? 'below' : 'above'} that).`;
      return '';
    }
    if (key === 'max_tokens') {
      const most = Number(input.getAttribute('max')) || 0;
      if (bad) return 'Max tokens must be a whole number, like 1000.';
      if (raw === '') return '';
      const n = Number(raw);
      if (!Number.isInteger(n)) return 'Max tokens must be a whole number, like 1000.';
      if (n < 1) return 'Max tokens must be at least 1.';
      if (most && n > most) return `Max tokens can be at most ${most.toLocaleString('en')}.`;
      return '';
    }
    if (key === 'system_prompt') {
      const most = Number(input.getAttribute('maxlength')) || 0;
      if (most && input.value.length > most) return `The system prompt can be at most ${most.toLocaleString('en')} characters.`;
    }
    return '';
  };

  /** Shows (or clears) the words under a settings field, and marks the field invalid for assistive tech. */
  const showSettingProblem = (key, text) => {
    const v = view();
    if (!v) return;
    const slot = $(`[data-setting-error="${cssEscape(key)}"]`, v);
    const input = $(`[data-setting="${cssEscape(key)}"]`, v);
    if (slot) slot.textContent = text || '';
    if (input) {
      if (text) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
  };

  /** Every settings field's problem, checked before a send: [{ setting, text }]. */
  const checkSettings = () => {
    const v = view();
    if (!v) return [];
    const found = [];
    for (const input of $$('[data-setting]', v)) {
      const text = settingProblem(input);
      showSettingProblem(input.dataset.setting, text);
      if (text) found.push({ setting: input.dataset.setting, text });
    }
    return found;
  };

  /** Opens the settings popover, its field `key` focused (with `text` under it, for a server's refusal). */
  const openSettings = (key, text) => {
    const v = view();
    if (!v) return;
    if (key === 'model' || key === 'thinking') {
      const control = $(key === 'model' ? '[data-model-picker]' : '[data-thinking]', v);
      if (control) control.focus();
      return;
    }
    setSettingsOpen(true, false);
    if (text) showSettingProblem(key, text);
    const input = key && $(`[data-setting="${cssEscape(key)}"]`, v);
    if (input) input.focus();
  };

  const setSettingsOpen = (open, focusFirst = true) => {
    const v = view();
    const panel = v && $('[data-settings-panel]', v);
    const toggle = v && $('[data-settings-toggle]', v);
    if (!panel) return;
    panel.hidden = !open;
    if (toggle) toggle.setAttribute('aria-expanded', String(open));
    if (open && focusFirst) {
      const first = $('[data-setting]', panel);
      if (first) first.focus();
    }
  };

  document.addEventListener('change', (ev) => {
    const t = ev.target;
    if (!(t instanceof Element)) return;
    if (t.matches('[data-model-picker]')) {
      prefs.model = t.value;
      changed.add('model');
    } else if (t.matches('[data-thinking]')) {
      prefs.thinking = t.checked;
      changed.add('thinking');
    } else if (t.matches('[data-setting]')) onSettingInput(t);
    else if (t.matches('[data-attach-input]')) {
      const files = Array.from(t.files || []);
      t.value = '';
      void uploadFiles(files);
    }
    else if (t.matches('[data-import]')) void importChat(t);
  });

  /** The changed settings as `options` (empty fields reset to the default with null), or null. */
  const takeOptions = () => {
    if (!changed.size) return null;
    const o = {};
    for (const k of changed) {
      if (k === 'model') o.model = prefs.model || null;
      else if (k === 'thinking') o.thinking = prefs.thinking;
      else if (k === 'temperature') o.temperature = prefs.temperature === '' ? null : Number(prefs.temperature);
      else if (k === 'max_tokens') o.max_tokens = prefs.max_tokens === '' ? null : Math.round(Number(prefs.max_tokens));
      else if (k === 'system_prompt') o.system_prompt = prefs.system_prompt.trim() ? prefs.system_prompt : null;
    }
    changed.clear();
    return o;
  };

  const renderPending = () => {
    const ul = view() && $('[data-attach-chips]', view());
    if (ul) ul.replaceChildren(chipList(pendingFiles, true));
  };

  const takeAttachments = () => {
    const files = pendingFiles;
    pendingFiles = [];
    renderPending();
    return files;
  };

  /** The server's own sentence for a refused request (a limit says which), or its status. */
  const refusal = async (res) => {
    try {
      const body = await res.json();
      if (body && typeof body.message === 'string' && body.message) return body.message;
    } catch (_) {
      // not JSON: the status is all there is
    }
    return `the server answered ${res.status}.`;
  };

  /** Uploads files picked with Attach, pasted into the box or dropped on it (one path for all three). */
  const uploadFiles = async (files) => {
    clearFormError();
    const problems = [];
    for (const file of files) {
      const body = new FormData();
      body.append('file', file, file.name);
      try {
        const res = await fetch(`${BASE}/api/files`, { method: 'POST', credentials: 'same-origin', body, headers: { Accept: 'application/json' } });
        if (res.status === 201 || res.ok) {
          const f = await res.json();
          pendingFiles.push({ id: f.id, name: f.name, size: f.size });
          renderPending();
        } else if (res.status === 413) problems.push(`${file.name} is too large: files can be at most 1 MB.`);
        else if (res.status === 415) problems.push(`${file.name} is not a text file: only UTF-8 text can be attached.`);
        else problems.push(`${file.name} could not be uploaded: ${await refusal(res)}`);
      } catch (_) {
        problems.push(`${file.name} could not be uploaded.`);
      }
    }
    if (problems.length) showError(problems.join(' '));
  };

  // ---- context note, regenerate and versions

  /** The note before an answer whose request left `n` older turns out: live (agent_response_start) or stored (data-omitted-turns). */
  const noteOmitted = (el, n) => {
    const prev = el.previousElementSibling;
    let note = prev && prev.matches('[data-context-note]') ? prev : null;
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

  /** A regenerated answer takes the old one's place in the list. */
  const replaceOldVersion = (frame) => {
    const prev = frame.previous_versions;
    let el = messageEl(frame.message_id);
    const old = messageEl(prev[prev.length - 1]);
    if (!el && old) {
      el = document.createElement('article');
      el.className = 'message';
      el.dataset.messageId = frame.message_id;
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

  /** Export and share belong to a stored chat: shown once the new chat has its id. */
  const showChatTools = () => {
    const v = view();
    const id = shownChatId();
    const tools = v && $('[data-chat-tools]', v);
    if (!tools || !id) return;
    for (const a of $$('a[data-export]', tools)) a.href = `${BASE}/api/chats/${encodeURIComponent(id)}/export?format=${a.dataset.export}`;
    tools.hidden = false;
  };

  const versionsOf = (el) => [...(el.dataset.previousVersions || '').split(/\s+/).filter(Boolean), el.dataset.messageId];

  /** The ‹ n/m › switcher on an answer with previous versions. */
  const renderVersions = (el) => {
    const all = versionsOf(el);
    let bar = $('[data-versions]', el);
    if (all.length < 2) {
      if (bar) bar.remove();
      return;
    }
    const actions = ensureActions(el);
    if (!bar) {
      bar = document.createElement('span');
      bar.className = 'versions';
      bar.dataset.versions = '';
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
      actions.prepend(bar);
    }
    const idx = el.dataset.versionShown ? Number(el.dataset.versionShown) : all.length - 1;
    $('[data-version-label]', bar).textContent = `${idx + 1}/${all.length}`;
    $('[data-version-prev]', bar).disabled = idx <= 0 || el.dataset.status === 'streaming';
    $('[data-version-next]', bar).disabled = idx >= all.length - 1;
  };

  /** `parent`'s child marked `attr`, made (as `tag` with `className`) when it has none yet. */
  const ensureChild = (parent, attr, tag, className) => {
    let child = $(`[${attr}]`, parent);
    if (!child) {
      child = document.createElement(tag);
      child.className = className;
      child.setAttribute(attr, '');
      parent.appendChild(child);
    }
    return child;
  };

  const ensureActions = (el) => ensureChild(el, 'data-message-actions', 'div', 'message-actions');

  const versionCache = new Map();
  const showVersion = async (el, idx) => {
    const all = versionsOf(el);
    if (idx < 0 || idx >= all.length) return;
    const content = $('[data-content]', el);
    let old = $('[data-version-content]', el);
    if (idx === all.length - 1) {
      delete el.dataset.versionShown;
      if (old) old.remove();
      content.hidden = false;
      renderVersions(el);
      return;
    }
    const id = all[idx];
    let msg = versionCache.get(id);
    if (!msg) {
      try {
        const res = await fetch(`${BASE}/api/messages/${encodeURIComponent(id)}`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
        if (!res.ok) throw new Error(String(res.status));
        msg = await res.json();
        versionCache.set(id, msg);
      } catch (_) {
        showError('Could not load that version.', el);
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
    renderFull(old, msg.content || '');
    content.hidden = true;
    el.dataset.versionShown = String(idx);
    renderVersions(el);
  };

  /** The Regenerate button sits on the last answer only, while nothing streams. */
  const refreshActions = (busyNow) => {
    const v = view();
    if (!v || document.body.hasAttribute('data-readonly')) return;
    const answers = $$('[data-message-id][data-role="assistant"]', v);
    const last = answers[answers.length - 1];
    let busy = busyNow;
    if (busy === undefined) {
      busy = streamingMessages().length > 0;
      for (const p of pendingSends.values()) if (p.el.isConnected) busy = true;
    }
    for (const b of $$('[data-regenerate]', v)) if (b.closest('[data-message-id]') !== last || busy) b.remove();
    if (!last || busy || last.dataset.status === 'streaming' || !last.dataset.messageId) return;
    if ($('[data-regenerate]', last)) return;
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'button-small';
    b.dataset.regenerate = '';
    b.textContent = 'Regenerate';
    b.title = 'Answer this turn again';
    ensureActions(last).appendChild(b);
  };

  const regenerate = (el) => {
    const id = newClientId();
    clearFormError();
    for (const b of $$('[data-regenerate]', view())) b.remove();
    const placeholder = { el, content: '', chatId: shownChatId(), acked: true, timer: setTimeout(() => giveUp(id), T.ackTimeoutMs) };
    pendingSends.set(id, placeholder);
    socket.send({ type: 'regenerate', id, message_id: el.dataset.messageId }, true);
    updateComposer();
  };

  // ---- search

  let searchTimer = null;
  let searchSeq = 0;
  const onSearchInput = (input) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void runSearch(input.value), 250);
  };

  /** A snippet with [matches] marked: text nodes and <mark>, never HTML from the server. */
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

  const runSearch = async (q) => {
    const ul = $('[data-search-results]');
    if (!ul) return;
    const mine = ++searchSeq;
    if (!q.trim()) {
      ul.replaceChildren();
      ul.hidden = true;
      return;
    }
    let results = [];
    try {
      const res = await fetch(`${BASE}/api/search?q=${encodeURIComponent(q.trim())}`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
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
      li.textContent = results ? 'No matches' : 'Search failed';
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

  // ---- share

  const shareBox = () => view() && $('[data-share-box]', view());
  const shareStatus = (text) => {
    const s = view() && $('[data-share-status]', view());
    if (s) s.textContent = text;
  };

  const createShare = async () => {
    const id = shownChatId();
    const box = shareBox();
    if (!id || !box) return;
    try {
      const res = await request('POST', `${BASE}/api/chats/${encodeURIComponent(id)}/share`);
      if (!res.ok) throw new Error(String(res.status));
      const body = await res.json();
      let url = body.url || '';
      if (!/^https?:/i.test(url)) url = location.origin + (BASE && !url.startsWith(`${BASE}/`) ? BASE : '') + url;
      box.hidden = false;
      const input = $('[data-share-url]', box);
      input.value = url;
      input.focus();
      input.select();
      shareStatus('Anyone with this link can read this chat.');
    } catch (_) {
      box.hidden = false;
      shareStatus('Could not create a share link.');
    }
  };

  const revokeShare = async () => {
    const id = shownChatId();
    if (!id) return;
    try {
      const res = await request('DELETE', `${BASE}/api/chats/${encodeURIComponent(id)}/share`);
      if (!res.ok) throw new Error(String(res.status));
      const input = shareBox() && $('[data-share-url]', shareBox());
      if (input) input.value = '';
      shareStatus('Share links revoked.');
    } catch (_) {
      shareStatus('Could not revoke the share links.');
    }
  };

  const copyShare = async () => {
    const input = shareBox() && $('[data-share-url]', shareBox());
    if (!input || !input.value) return;
    const ok = await window.copyText(input.value);
    if (ok) api.lastCopied = input.value;
    shareStatus(ok ? 'Link copied.' : 'Copy failed: select the link and copy it.');
  };

  // ---- import

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
      if (err) err.textContent = e && e.message ? e.message : 'Import failed.';
    }
  };

  // ---- usage

  /** @type {Promise<void> | null} */
  let usageInFlight = null;
  const refreshUsage = async () => {
    // The sidebar's line (an answer keeps its own in data-answer-usage).
    const el = $('p[data-usage]');
    if (!el) return;
    try {
      const res = await fetch(`${BASE}/api/usage`, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!res.ok) return;
      const u = await res.json();
      const n = (x) => Number(x || 0).toLocaleString('en');
      const plural = (x, one, many) => `${n(x)} ${Number(x) === 1 ? one : many}`;
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
  const scheduleUsage = () => {
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

  /** Clicks of the feature controls; true when handled. */
  const featureClick = (t) => {
    const toggle = t.closest('[data-settings-toggle]');
    if (toggle) {
      setSettingsOpen(toggle.getAttribute('aria-expanded') !== 'true');
      return true;
    }
    if (t.closest('[data-settings-close]')) {
      setSettingsOpen(false);
      const back = view() && $('[data-settings-toggle]', view());
      if (back) back.focus();
      return true;
    }
    const remove = t.closest('[data-attach-remove]');
    if (remove) {
      pendingFiles = pendingFiles.filter((f) => f.id !== remove.dataset.attachRemove);
      renderPending();
      return true;
    }
    const regen = t.closest('[data-regenerate]');
    if (regen) {
      const el = regen.closest('[data-message-id]');
      if (el) regenerate(el);
      return true;
    }
    const prev = t.closest('[data-version-prev]');
    const next = t.closest('[data-version-next]');
    if (prev || next) {
      const el = (prev || next).closest('[data-message-id]');
      const all = versionsOf(el);
      const idx = el.dataset.versionShown ? Number(el.dataset.versionShown) : all.length - 1;
      void showVersion(el, idx + (prev ? -1 : 1));
      return true;
    }
    if (t.closest('[data-share]')) {
      void createShare();
      return true;
    }
    if (t.closest('[data-share-revoke]')) {
      void revokeShare();
      return true;
    }
    if (t.closest('[data-share-copy]')) {
      void copyShare();
      return true;
    }
    if (t.closest('[data-search-results] a')) {
      const ul = $('[data-search-results]');
      if (ul) ul.hidden = true;
      setSidebarOpen(false);
      return false;
    }
    return false;
  };

  // ---------------------------------------------------------------- Page (first load and every swap)

  let hydrateQueued = false;
  let hydratedView = null;
  const hydrate = () => {
    hydrateQueued = false;
    socket.refreshIndicator();
    const v = view();
    if (!v || v === hydratedView) return;
    hydratedView = v;
    if (v.dataset.pageTitle) document.title = v.dataset.pageTitle;
    for (const el of $$('[data-message-id]', v)) renderMessage(el);
    hydrateComposerTools(v);
    markActiveChat();
    resubscribe();
    updateComposer();
    scrollToBottom();
  };
  const queueHydrate = () => {
    if (hydrateQueued) return;
    hydrateQueued = true;
    queueMicrotask(hydrate);
  };

  document.addEventListener('htmx:afterSwap', queueHydrate);
  document.addEventListener('htmx:historyRestore', queueHydrate);
  document.addEventListener('htmx:load', queueHydrate);

  const start = () => {
    // A read-only page (a shared chat) only renders what it was given: no socket, no history marks.
    if (document.body.hasAttribute('data-readonly')) {
      for (const el of $$('[data-message-id]')) renderMessage(el);
      return;
    }
    // htmx only restores history entries it marked; mark the first one so Back returns here.
    if (!history.state) history.replaceState({ htmx: true }, document.title, location.href);
    if (actions) {
      actions.init({
        send: (text) => sendMessage(text),
        edit: editText,
        actionsOf: ensureActions,
        ensureChild,
        rawOf: (el) => {
          // An older version on show is what Copy takes.
          const old = el.dataset.versionShown ? versionCache.get(versionsOf(el)[Number(el.dataset.versionShown)]) : null;
          return old ? old.content || '' : stateOf(el).raw;
        },
        nearBottom,
        scrollToBottom,
      });
    }
    hydrate();
    groupChats();
    socket.connect();
    void loadModels();
    void refreshUsage();
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
