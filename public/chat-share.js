// @ts-check
/**
 * Share and export: the header's one menu (a read-only link, Markdown and JSON downloads named by
 * the server after the chat's title), the share box with Copy and Revoke. The menu closes on a
 * choice, a click elsewhere or Esc (public/shortcuts.js).
 */
import { $, $$, BASE, api, request, shownChatId, view } from './chat-dom.js';

const shareBox = () => {
  const v = view();
  return v ? $('[data-share-box]', v) : null;
};
const shareInput = () => {
  const box = shareBox();
  return box ? /** @type {HTMLInputElement | null} */ ($('[data-share-url]', box)) : null;
};
/** @param {string} text */
const shareStatus = (text) => {
  const v = view();
  const s = v && $('[data-share-status]', v);
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
    const input = shareInput();
    if (input) {
      input.value = url;
      input.focus();
      input.select();
    }
    shareStatus('Anyone with this link can read this chat.');
  } catch (_) {
    box.hidden = false;
    shareStatus('Could not create a share link. Try again.');
  }
};

const revokeShare = async () => {
  const id = shownChatId();
  if (!id) return;
  try {
    const res = await request('DELETE', `${BASE}/api/chats/${encodeURIComponent(id)}/share`);
    if (!res.ok) throw new Error(String(res.status));
    const input = shareInput();
    if (input) input.value = '';
    shareStatus('Share links revoked.');
  } catch (_) {
    shareStatus('Could not revoke the share links. Try again.');
  }
};

const copyShare = async () => {
  const input = shareInput();
  if (!input || !input.value) return;
  const ok = await window.copyText(input.value);
  if (ok) api.lastCopied = input.value;
  shareStatus(ok ? 'Link copied.' : 'Copy failed: select the link and copy it.');
};

/** Export and share belong to a stored chat: shown once the new chat has its id. */
export const showChatTools = () => {
  const v = view();
  const id = shownChatId();
  const tools = v && $('[data-chat-tools]', v);
  if (!tools || !id) return;
  for (const a of /** @type {HTMLAnchorElement[]} */ ($$('a[data-export]', tools))) {
    a.href = `${BASE}/api/chats/${encodeURIComponent(id)}/export?format=${a.dataset.export}`;
  }
  tools.hidden = false;
};

/** Clicks of the share/export menu and box; true when handled. @param {Element} t */
export const shareClick = (t) => {
  // The menu closes on a choice or a click elsewhere.
  const menu = /** @type {HTMLDetailsElement | null} */ ($('details[data-chat-menu][open]'));
  if (menu && (!menu.contains(t) || t.closest('.menu-item'))) menu.open = false;
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
  return false;
};
