/*
 * The chat page's one script: a single WebSocket kept across HTMX swaps, rendering of streamed and
 * stored answers (marked + DOMPurify), the message box. Wire contract: PROTOCOL.md (WebSocket
 * frames and the page hooks). Plain ES2020, no build step, no inline code (the CSP forbids it).
 */
(() => {
  'use strict';

  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 10000;
  const PING_EVERY_MS = 25000;
  const SILENCE_LIMIT_MS = 40000;
  const ACK_TIMEOUT_MS = 60000;
  const ANNOUNCE_MAX_CHARS = 600;

  const ERROR_TEXT = {
    model_not_configured: 'No model API key is configured on the server (DEEPSEEK_API_KEY).',
    rate_limited: 'Too many messages. Please wait a moment.',
    upstream_auth: 'The model API refused the server\'s key.',
    upstream_quota: 'The model account is out of balance.',
    upstream_rate_limited: 'The model API is busy (rate limited). Try again shortly.',
    upstream_unavailable: 'The model API is unavailable right now.',
    upstream_timeout: 'The model stopped responding.',
    upstream_interrupted: 'The answer broke off.',
    not_found: 'That chat or message no longer exists.',
  };

  const STATUS_TEXT = {
    stopped: 'Stopped',
    interrupted: 'Interrupted: the answer broke off',
    error: 'The model could not answer',
  };

  // ---------------------------------------------------------------- Markdown

  const escapeHtml = (s) =>
    String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

  const SAFE_HREF = /^(https?:|mailto:)/i;

  const md = (() => {
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
    };
    return (src) => purify.sanitize(instance.parse(src || ''), options);
  })();

  const renderInto = (el, raw) => {
    if (md) el.innerHTML = md(raw);
    else el.textContent = raw;
    el.dataset.md = 'rendered';
  };

  // ---------------------------------------------------------------- DOM helpers

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const view = () => document.getElementById('chat-content');
  const shownChatId = () => (view() && view().dataset.chatId) || '';
  const cssEscape = (s) => (window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, '\\$&'));
  const messageEl = (id) => (view() ? $(`[data-message-id="${cssEscape(id)}"]`, view()) : null);
  const isShown = (frame) => !!frame.chat_id && frame.chat_id === shownChatId();

  /** Per message: its raw Markdown and reasoning text, the last seq applied, frames waiting for a gap. */
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
        dirty: false,
      };
      states.set(el, st);
    }
    return st;
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
    if (empty) empty.remove();
    $('[data-messages]', view()).appendChild(el);
    return el;
  };

  const ensureReasoning = (el) => {
    let details = $('details[data-reasoning]', el);
    if (!details) {
      details = document.createElement('details');
      details.className = 'reasoning';
      details.dataset.reasoning = '';
      details.innerHTML = '<summary>Thinking</summary><div class="reasoning-text" data-reasoning-text></div>';
      el.insertBefore(details, el.firstChild);
    }
    return $('[data-reasoning-text]', details);
  };

  const renderStatusNote = (el) => {
    let note = $('[data-status-note]', el);
    const text = el.dataset.role === 'assistant' ? STATUS_TEXT[el.dataset.status] : undefined;
    if (!text) {
      if (note) note.remove();
      return;
    }
    if (!note) {
      note = document.createElement('p');
      note.className = 'status-note';
      note.dataset.statusNote = '';
      el.appendChild(note);
    }
    note.textContent = text;
  };

  const renderMessage = (el) => {
    const st = stateOf(el);
    st.dirty = false;
    const content = $('[data-content]', el);
    if (el.dataset.role === 'assistant') renderInto(content, st.raw);
    else content.textContent = st.raw;
    if (st.reasoning) ensureReasoning(el).textContent = st.reasoning;
    el.dataset.seq = String(st.seq);
    renderStatusNote(el);
  };

  // Pieces arrive many times a second; render each touched message at most once per frame.
  const dirty = new Set();
  let renderScheduled = false;
  const flushRenders = () => {
    renderScheduled = false;
    const stick = nearBottom();
    for (const el of dirty) if (el.isConnected) renderMessage(el);
    dirty.clear();
    if (stick) scrollToBottom();
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

  const showError = (text, el) => {
    if (el && el.isConnected) {
      let note = $('[data-message-error]', el);
      if (!note) {
        note = document.createElement('p');
        note.className = 'message-error';
        note.setAttribute('role', 'alert');
        note.dataset.messageError = '';
        el.appendChild(note);
      }
      note.textContent = text;
      return;
    }
    const box = view() && $('[data-form-error]', view());
    if (box) box.textContent = text;
  };
  const clearFormError = () => {
    const box = view() && $('[data-form-error]', view());
    if (box) box.textContent = '';
  };

  // ---------------------------------------------------------------- Chat list

  const chatLink = (id) => $(`[data-chat-list] a[href="/chat/${cssEscape(id)}"]`);

  const markActiveChat = () => {
    const id = shownChatId();
    for (const a of $$('[data-chat-list] a')) {
      if (id && a.getAttribute('href') === `/chat/${id}`) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  };

  const addChatToList = (id, title) => {
    const list = $('[data-chat-list]');
    if (!list || chatLink(id)) return;
    const li = document.createElement('li');
    const a = document.createElement('a');
    const url = `/chat/${id}`;
    a.href = url;
    a.setAttribute('hx-get', url);
    a.setAttribute('hx-target', '#chat-content');
    a.setAttribute('hx-select', '#chat-content');
    a.setAttribute('hx-swap', 'outerHTML');
    a.setAttribute('hx-push-url', 'true');
    a.textContent = title || 'Untitled chat';
    li.appendChild(a);
    list.insertBefore(li, list.firstChild);
    if (window.htmx) window.htmx.process(li);
  };

  const setChatTitle = (id, title) => {
    if (!title) return;
    const a = chatLink(id);
    if (a) a.textContent = title;
    if (id === shownChatId()) {
      const h = $('[data-chat-title]', view());
      if (h) h.textContent = title;
      document.title = title;
    }
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

  const sendMessage = () => {
    const ta = textarea();
    if (!ta || ta.disabled) return;
    const content = ta.value;
    if (!content.trim()) return;
    clearFormError();
    const id = newClientId();
    const chatId = shownChatId();
    const el = createMessage('user', null, 'sending');
    el.dataset.clientId = id;
    const st = stateOf(el);
    st.raw = content;
    renderMessage(el);
    pendingSends.set(id, { chatId, el, content, acked: false, timer: setTimeout(() => giveUp(id), ACK_TIMEOUT_MS) });
    const frame = { type: 'user_message', id, content };
    if (chatId) frame.chat_id = chatId;
    socket.send(frame, true);
    ta.value = '';
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

  const giveUp = (id) => {
    const p = settleSend(id);
    if (!p) return;
    if (!p.acked && p.el.isConnected) p.el.dataset.status = 'error';
    showError('The server did not answer. Please try again.', p.el.isConnected ? p.el : null);
    updateComposer();
  };

  document.addEventListener('submit', (ev) => {
    if (!ev.target.matches('form[data-chat-form]')) return;
    ev.preventDefault();
    sendMessage();
  });

  document.addEventListener('keydown', (ev) => {
    const t = ev.target;
    if (!(t instanceof HTMLTextAreaElement) || !t.closest('form[data-chat-form]')) return;
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      sendMessage();
    }
  });

  document.addEventListener('input', (ev) => {
    const t = ev.target;
    if (t instanceof HTMLTextAreaElement && t.closest('form[data-chat-form]')) autoGrow(t);
  });

  document.addEventListener('click', (ev) => {
    const t = ev.target instanceof Element ? ev.target : null;
    if (!t) return;
    if (t.closest('[data-stop]')) {
      for (const el of streamingMessages()) socket.send({ type: 'stop', message_id: el.dataset.messageId }, true);
      return;
    }
    const toggle = t.closest('[data-sidebar-toggle]');
    if (toggle) {
      setSidebarOpen(toggle.getAttribute('aria-expanded') !== 'true');
      return;
    }
    if (t.closest('#chat-nav a, [data-new-chat]')) setSidebarOpen(false);
  });

  const setSidebarOpen = (open) => {
    const toggle = $('[data-sidebar-toggle]');
    const nav = $('#chat-nav');
    if (toggle) toggle.setAttribute('aria-expanded', String(open));
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
      else st.raw += next.content || '';
      st.seq = next.seq;
      st.waiting.delete(next.seq);
      next = st.waiting.get(st.seq + 1);
    }
    scheduleRender(el);
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
        const url = `/chat/${frame.chat_id}`;
        // htmx restores history entries only when they carry its marker.
        history.replaceState({ htmx: true }, document.title, location.href);
        history.pushState({ htmx: true }, '', url);
        if (frame.title) setChatTitle(frame.chat_id, frame.title);
        markActiveChat();
      }
    },

    chat_updated(frame) {
      setChatTitle(frame.chat_id, frame.title);
    },

    user_message(frame) {
      const p = frame.id ? pendingSends.get(frame.id) : null;
      if (p) p.acked = true;
      if (!isShown(frame) || messageEl(frame.message_id)) return;
      let el = p && p.el.isConnected ? p.el : null;
      if (el) {
        el.dataset.messageId = frame.message_id;
        el.dataset.status = 'complete';
        delete el.dataset.clientId;
      } else {
        el = createMessage('user', frame.message_id, 'complete');
        stateOf(el).raw = frame.content || '';
        renderMessage(el);
        scrollToBottom();
      }
    },

    agent_response_start(frame) {
      if (frame.id) settleSend(frame.id);
      if (isShown(frame)) {
        const stick = nearBottom();
        assistantEl(frame);
        if (stick) scrollToBottom();
      }
      updateComposer();
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
        st.raw = frame.content || '';
        if (typeof frame.reasoning === 'string') st.reasoning = frame.reasoning;
        if (typeof frame.seq === 'number') st.seq = Math.max(st.seq, frame.seq);
        st.waiting.clear();
        dirty.delete(el);
        const stick = nearBottom();
        el.dataset.status = frame.status || 'complete';
        renderMessage(el);
        if (stick) scrollToBottom();
        const text = $('[data-content]', el).textContent.trim();
        const label = frame.status && frame.status !== 'complete' ? `Answer ${frame.status}` : 'Answer finished';
        announce(text ? `${label}: ${text}` : label);
      }
      updateComposer(true);
    },

    error(frame) {
      const text = ERROR_TEXT[frame.code] || frame.message || 'Something went wrong.';
      const full =
        frame.code === 'rate_limited' && frame.retry_after_ms
          ? `${ERROR_TEXT.rate_limited} Try again in ${Math.ceil(frame.retry_after_ms / 1000)} s.`
          : text;
      const p = frame.id ? pendingSends.get(frame.id) : null;
      if (frame.chat_id && frame.chat_id !== shownChatId() && !(p && p.el.isConnected)) return;
      const target = (frame.message_id && messageEl(frame.message_id)) || null;
      if (p && !frame.message_id) {
        // The send was refused before any answer started.
        settleSend(frame.id);
        if (!p.acked && p.el.isConnected) {
          p.el.dataset.status = 'error';
          const ta = textarea();
          if (ta && !ta.value) ta.value = p.content;
        }
      }
      showError(full, target);
      updateComposer(true);
    },

    subscribed() {},
    pong() {},
  };

  // ---------------------------------------------------------------- Socket

  const socket = (() => {
    let ws = null;
    let attempt = 0;
    let retryTimer = null;
    let lastRx = 0;
    let ready = false;
    const outbox = [];

    const indicator = (value) => {
      for (const el of $$('[data-connection]')) {
        el.dataset.connection = value;
        const label = $('[data-connection-label]', el);
        if (label) label.textContent = { connected: 'Connected', connecting: 'Connecting…', offline: 'Offline' }[value];
      }
    };
    const current = () => {
      if (!navigator.onLine) return 'offline';
      return ready ? 'connected' : 'connecting';
    };

    const connect = () => {
      clearTimeout(retryTimer);
      retryTimer = null;
      if (ws) return;
      ready = false;
      indicator(current());
      const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
      const s = new WebSocket(url);
      ws = s;
      s.onmessage = (ev) => {
        lastRx = Date.now();
        let frame;
        try {
          frame = JSON.parse(ev.data);
        } catch (_) {
          return;
        }
        const handler = frame && handlers[frame.type];
        if (handler) handler(frame);
      };
      s.onclose = (ev) => {
        if (ws !== s) return;
        ws = null;
        ready = false;
        if (ev.code === 1009) showError('That message was too large for the server.');
        indicator(current());
        scheduleReconnect();
      };
      s.onerror = () => {
        /* onclose follows and reconnects */
      };
    };

    const scheduleReconnect = () => {
      if (retryTimer || ws || !navigator.onLine) return;
      const exp = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      attempt += 1;
      const delay = exp / 2 + Math.random() * (exp / 2);
      retryTimer = setTimeout(connect, delay);
    };

    setInterval(() => {
      if (!ws || !ready) return;
      if (Date.now() - lastRx > SILENCE_LIMIT_MS) {
        ws.close(4000, 'silent');
        return;
      }
      send({ type: 'ping' });
    }, PING_EVERY_MS);

    window.addEventListener('offline', () => indicator('offline'));
    window.addEventListener('online', () => {
      attempt = 0;
      if (ws && ready) {
        indicator('connected');
        send({ type: 'ping' });
      } else {
        connect();
      }
    });

    /** Queue frames that must not be lost (`keep`) until the socket is back; drop the rest. */
    function send(frame, keep) {
      if (ws && ready && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
      else if (keep) outbox.push(frame);
    }

    return {
      connect,
      send,
      /** A history restore swaps the whole body, indicator included: show the real state again. */
      refreshIndicator: () => indicator(current()),
      onConnected() {
        ready = true;
        attempt = 0;
        indicator(current());
        while (outbox.length && ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(outbox.shift()));
      },
    };
  })();

  const resubscribe = () => {
    const chatId = shownChatId();
    if (chatId) socket.send({ type: 'subscribe', chat_id: chatId });
    for (const el of streamingMessages()) {
      socket.send({ type: 'resume', message_id: el.dataset.messageId, after_seq: stateOf(el).seq });
    }
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
    // htmx only restores history entries it marked; mark the first one so Back returns here.
    if (!history.state) history.replaceState({ htmx: true }, document.title, location.href);
    hydrate();
    socket.connect();
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
