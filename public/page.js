// @ts-check
/**
 * What the chat page and the Solver page share (loaded before chat.js / solver.js):
 *
 * `PageSocket.create(...)`: the page's WebSocket, one socket for the page's life on the
 * page's `data-ws-path`. Reconnects with jittered exponential backoff; a watchdog pings a silent
 * socket and drops it when nothing comes back (a stalled connection never fires `close`); coming back
 * to the page (`visibilitychange`, `pageshow`, `online`) checks the socket at once; refused again
 * and again before any frame, it checks the session and sends the page to the sign-in form when it
 * ended. Every `[data-connection]` element shows the state. Plain ES2020, no build step.
 *
 *   const socket = PageSocket.create({ onFrame, busy, tuning, onClose });
 *   socket.connect(); socket.send(frame, keep); socket.onConnected(); // on the `connected` frame
 *
 * Token-based hosts: when a host script (the `pageScript` option, loaded before this file) defines
 * `window.chatSystem = { getToken }` (a token, or a promise of one; null when there is none), the
 * page sends it as `Authorization: Bearer <token>` on its requests to our base path (fetch, htmx,
 * and htmx's history restore when Back finds no cached page) and on the socket as the WebSocket
 * subprotocol `bearer.<token>` after `chat-system` (browsers cannot set headers on a WebSocket; a
 * subprotocol stays out of URLs and access logs, where a query parameter would land, and the
 * server answers with `chat-system` alone, so the token is never echoed). A page opened without
 * credentials (`data-token-bootstrap`) loads itself again with it.
 *
 * `copyText(text)`: a clipboard write, with a fallback (resolves to true or false);
 * `copyFromButton(button, text, label)`: the same for a copy button, with its Copied / Copy failed state.
 *
 * A classic script (not a module): what it gives the page is on `window`, typed for the page's modules
 * in types/page-globals.d.ts.
 */
(() => {
  'use strict';

  /**
   * This script's own marks on `window` and on a copy button (not for other scripts), and the
   * states `[data-connection]` shows.
   * @typedef {'connected' | 'connecting' | 'offline'} ConnectionState
   * @typedef {Window & { chatSystem?: { getToken?: () => unknown }, __chatSystemFetch?: boolean }} HostWindow
   * @typedef {HTMLElement & { _copyTimer?: ReturnType<typeof setTimeout> }} CopyButton
   */
  const win = /** @type {HostWindow} */ (window);

  const root = document.documentElement;
  const BASE = root.dataset.basePath || '';
  const WS_PATH = root.dataset.wsPath || '/ws';
  const LOGIN_PATH = root.dataset.loginPath || '';
  /** @type {Record<ConnectionState, string>} */
  const LABELS = { connected: 'Connected', connecting: 'Connecting…', offline: 'Offline' };

  /** The host's token hook, when its script defined one. */
  const hook = () => {
    const cs = win.chatSystem;
    return cs && typeof cs.getToken === 'function' ? /** @type {{ getToken: () => unknown }} */ (cs) : null;
  };
  /** The last token the hook gave (htmx asks for headers synchronously). @type {string | null} */
  let token = null;
  const refreshToken = async () => {
    const h = hook();
    if (!h) return null;
    try {
      token = /** @type {string | null} */ ((await h.getToken()) || null);
    } catch (_) {
      token = null;
    }
    return token;
  };
  /** Whether `url` goes to our own paths on this origin (only those get the token). @param {string} url */
  const ours = (url) => {
    try {
      const u = new URL(url, location.href);
      return u.origin === location.origin && (u.pathname === BASE || u.pathname.startsWith(`${BASE}/`));
    } catch (_) {
      return false;
    }
  };
  // Once per window (it survives the bootstrap's document.open); the htmx listener once per document
  // (document.open erases listeners).
  if (hook() && !win.__chatSystemFetch) {
    win.__chatSystemFetch = true;
    const plainFetch = window.fetch.bind(window);
    window.fetch = async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (!ours(url)) return plainFetch(input, init);
      const value = await refreshToken();
      const headers = new Headers((init && init.headers) || (input instanceof Request ? input.headers : undefined));
      if (value && !headers.has('Authorization')) headers.set('Authorization', `Bearer ${value}`);
      return plainFetch(input, Object.assign({}, init, { headers }));
    };
  }
  if (hook()) {
    document.addEventListener('htmx:configRequest', (ev) => {
      const detail = /** @type {any} */ (ev).detail;
      if (token && ours(detail.path) && !detail.headers.Authorization) detail.headers.Authorization = `Bearer ${token}`;
    });
    // Back/Forward to a page htmx has not cached (the chat page caches none: historyCacheSize 0):
    // htmx asks the server with its own XMLHttpRequest, which never passes htmx:configRequest. It is
    // opened but not sent yet: hold it, and send it with the freshest token.
    document.addEventListener('htmx:historyCacheMiss', (ev) => {
      const detail = /** @type {any} */ (ev).detail;
      if (!ours(detail.path)) return;
      ev.preventDefault();
      void refreshToken().then((value) => {
        if (value) detail.xhr.setRequestHeader('Authorization', `Bearer ${value}`);
        detail.xhr.send();
      });
    });
  }
  void refreshToken();

  /**
   * A page of ours opened without credentials on a token-based host: the same page again, asked for
   * with the token, replaces this one (its scripts run as on a first load).
   */
  if (root.dataset.tokenBootstrap !== undefined) {
    void (async () => {
      const status = document.querySelector('[data-token-status]');
      const value = await refreshToken();
      const res = value ? await window.fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } }).catch(() => null) : null;
      if (res && res.ok) {
        const html = await res.text();
        document.open();
        document.write(html);
        document.close();
      } else if (status)
        status.textContent = value ? 'Your sign-in was refused: sign in again, then reload this page.' : 'Sign in first, then reload this page.';
    })();
  }

  /** Timings (ms); a page passes its own `tuning` to change any of them (tests shorten them). @type {Record<string, number>} */
  const DEFAULTS = {
    backoffBaseMs: 500,
    backoffCapMs: 10000,
    /** No frame for this long while idle: send a ping to check the socket. */
    idlePingMs: 20000,
    /** The same while something streams (a silent socket then is more likely a dead one). */
    streamIdlePingMs: 8000,
    /** A ping not answered (no frame at all) within this: the socket is stalled, reconnect. */
    pongTimeoutMs: 6000,
    /** After the page comes back (visible, pageshow, online): a frame must arrive within this. */
    wakeTimeoutMs: 3000,
    /** A socket that does not open within this is given up and retried. */
    connectTimeoutMs: 10000,
    watchdogTickMs: 1000,
  };

  /**
   * @param {{ onFrame: (frame: object) => void, busy?: () => boolean, tuning?: object,
   *           onClose?: (ev: CloseEvent) => void }} options
   */
  function create(options) {
    const T = Object.assign({}, DEFAULTS);
    for (const [k, v] of Object.entries(options.tuning || {})) if (k in T && typeof v === 'number') T[k] = v;
    const busy = options.busy || (() => false);

    /** @type {WebSocket | null} */
    let ws = null;
    let attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    let retryTimer = null;
    let lastRx = 0;
    let openedAt = 0;
    let probeDeadline = 0;
    let ready = false;
    /** @type {object[]} */
    const outbox = [];

    /** @param {ConnectionState} value */
    const indicator = (value) => {
      for (const el of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('[data-connection]'))) {
        el.dataset.connection = value;
        const label = el.querySelector('[data-connection-label]');
        if (label) label.textContent = LABELS[value];
      }
    };
    /** @returns {ConnectionState} */
    const current = () => {
      if (!navigator.onLine) return 'offline';
      return ready ? 'connected' : 'connecting';
    };

    /** With a host token: offered as the subprotocol `bearer.<token>` beside `chat-system`. @param {string} url */
    const openSocket = (url) => {
      if (!token) return new WebSocket(url);
      try {
        return new WebSocket(url, ['chat-system', `bearer.${token}`]);
      } catch (_) {
        return new WebSocket(url); // not a valid subprotocol (RFC 6455 token characters only)
      }
    };

    let fetching = false;
    const connect = () => {
      clearTimeout(/** @type {ReturnType<typeof setTimeout>} */ (retryTimer));
      retryTimer = null;
      if (ws || fetching) return;
      if (hook()) {
        // The freshest token for each socket (a token may have expired since the last one).
        fetching = true;
        void refreshToken().then(() => {
          fetching = false;
          open();
        });
        return;
      }
      open();
    };

    const open = () => {
      if (ws) return;
      ready = false;
      probeDeadline = 0;
      indicator(current());
      const s = openSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`);
      ws = s;
      openedAt = Date.now();
      s.onmessage = (ev) => {
        if (ws !== s) return;
        lastRx = Date.now();
        if (probeDeadline) {
          probeDeadline = 0;
          indicator(current());
        }
        let frame;
        try {
          frame = JSON.parse(ev.data);
        } catch (_) {
          return;
        }
        if (frame && typeof frame === 'object') options.onFrame(frame);
      };
      s.onclose = (ev) => {
        if (ws !== s) return;
        const wasReady = ready;
        ws = null;
        ready = false;
        if (options.onClose) options.onClose(ev);
        indicator(current());
        scheduleReconnect();
        // 4401: the server ended this session (logged out elsewhere, password changed).
        if (ev.code === 4401) void checkSession();
        // Refused again and again before any frame: maybe the session ended (the upgrade got 401).
        else if (!wasReady && attempt >= 3 && attempt % 3 === 0) void checkSession();
      };
      s.onerror = () => {
        /* onclose follows and reconnects */
      };
    };

    /** Gives up on the current socket without waiting for a close handshake that may never come. @param {string} reason */
    const drop = (reason) => {
      const s = ws;
      if (!s) return;
      ws = null;
      ready = false;
      probeDeadline = 0;
      s.onmessage = null;
      s.onclose = null;
      try {
        s.close(4000, reason);
      } catch (_) {
        /* already closing */
      }
      indicator(current());
      scheduleReconnect();
    };

    /** An ended session sends the page to the sign-in form instead of retrying forever. */
    // A page already on its way elsewhere (the logout form's own 303 to the login page) is left to
    // that navigation: a second one would abort it.
    let leaving = false;
    addEventListener('beforeunload', () => {
      leaving = true;
    });
    addEventListener('pageshow', () => {
      leaving = false;
    });

    const checkSession = async () => {
      try {
        const res = await fetch(`${BASE}/api/chats`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
        if (res.status === 401 && LOGIN_PATH && !leaving) location.assign(LOGIN_PATH);
      } catch (_) {
        /* the server is away: keep retrying */
      }
    };

    const scheduleReconnect = () => {
      if (retryTimer || ws || !navigator.onLine) return;
      const exp = Math.min(T.backoffCapMs, T.backoffBaseMs * 2 ** attempt);
      attempt += 1;
      // "Equal jitter": half the step fixed, half random, so many tabs do not return in lockstep.
      const delay = exp / 2 + Math.random() * (exp / 2);
      retryTimer = setTimeout(connect, delay);
    };

    /** Ask the server for a sign of life; no frame by the deadline means the socket is dead. @param {number} timeoutMs */
    const probe = (timeoutMs) => {
      if (!ws || !ready || ws.readyState !== WebSocket.OPEN) return;
      const deadline = Date.now() + timeoutMs;
      probeDeadline = probeDeadline ? Math.min(probeDeadline, deadline) : deadline;
      ws.send(JSON.stringify({ type: 'ping' }));
    };

    const watchdog = () => {
      if (!ws) return;
      const now = Date.now();
      if (!ready) {
        if (now - openedAt > T.connectTimeoutMs) drop('connect timeout');
        return;
      }
      if (probeDeadline) {
        if (now > probeDeadline) drop('stalled');
        return;
      }
      if (now - lastRx > (busy() ? T.streamIdlePingMs : T.idlePingMs)) probe(T.pongTimeoutMs);
    };
    setInterval(watchdog, T.watchdogTickMs);

    /**
     * The page is back in front of the user: reconnect now, or make sure the open socket still works.
     * After `online` the indicator says `connecting` until the socket has answered.
     * @param {Event} [ev]
     */
    const wake = (ev) => {
      if (!navigator.onLine) {
        indicator('offline');
        return;
      }
      attempt = 0;
      if (!ws) connect();
      else if (ready) {
        if (ev && ev.type === 'online') indicator('connecting');
        probe(T.wakeTimeoutMs);
      } else indicator(current());
    };

    window.addEventListener('offline', () => indicator('offline'));
    window.addEventListener('online', wake);
    window.addEventListener('pageshow', (ev) => {
      if (ev.persisted) wake();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') wake();
    });

    return {
      connect,
      /** Sends now; frames that must not be lost (`keep`) wait for the socket to be back. @param {object} frame @param {boolean} [keep] */
      send(frame, keep) {
        if (ws && ready && ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify(frame));
          return true;
        }
        if (keep) outbox.push(frame);
        return false;
      },
      /** A history restore swaps the whole body, indicator included: show the real state again. */
      refreshIndicator: () => indicator(current()),
      /** Call on the server's `connected` frame: the socket is usable; what waited goes out. */
      onConnected() {
        ready = true;
        attempt = 0;
        indicator(current());
        while (outbox.length && ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(outbox.shift()));
      },
    };
  }

  window.PageSocket = { create };

  /** Copies text with the Clipboard API, or through a hidden textarea where that is refused. @param {string} text */
  window.copyText = async (text) => {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      const ta = document.createElement('textarea');
      ta.value = text;
      ta.setAttribute('readonly', '');
      ta.style.position = 'fixed';
      ta.style.opacity = '0';
      document.body.appendChild(ta);
      ta.select();
      let ok = false;
      try {
        ok = document.execCommand('copy');
      } catch (_) {
        ok = false;
      }
      ta.remove();
      return ok;
    }
  };

  /**
   * A copy button's click: copies `text`, says "Copied" or "Copy failed" on the button (and in its
   * `data-copy-state`) for 2 s, then shows `label` again. Resolves to whether it copied.
   * @param {CopyButton} button
   * @param {string} text
   * @param {string} label
   */
  window.copyFromButton = async (button, text, label) => {
    const ok = await window.copyText(text);
    button.textContent = ok ? 'Copied' : 'Copy failed';
    button.dataset.copyState = ok ? 'copied' : 'failed';
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(() => {
      button.textContent = label;
      delete button.dataset.copyState;
    }, 2000);
    return ok;
  };
})();
