// @ts-check
/**
 * The chat page's entry module (`<script type="module">`; native ES modules, no build step, no
 * inline code: the CSP allows scripts from 'self' only). Each concern is a module beside it in
 * public/ (the server serves that folder flat):
 *
 *   chat-dom.js        lookups, the shown chat, timings, requests, wire types
 *   chat-socket.js     the page socket, frames in seq order, resume after a reconnect or a swap
 *   chat-render.js     messages drawn (chat-markdown.js), live thinking, notes, versions, errors
 *   chat-composer.js   the message box: send, refused sends taken back, Stop, files, paste, drop
 *   chat-settings.js   model, thinking and the settings popover, checked before sending
 *   chat-sidebar.js    chat list by date, rename, delete, search, usage, import, the phone drawer
 *   chat-share.js      the header's share/export menu
 *   message-actions.js Copy, Edit, an answer's details, Continue, jump to latest
 *   errors.js          error codes and refused fields in words (the Solver page uses it too)
 *   shortcuts.js       keyboard shortcuts (listed in the sidebar)
 *
 * This file wires the page's events to them and hydrates each chat view htmx swaps in. Wire
 * contract: docs/protocol.md (WebSocket frames and the page hooks).
 */
import './shortcuts.js';
import { $$, readonly, view } from './chat-dom.js';
import { composerClick, sendMessage, stopStreaming, streamingMessages, updateComposer } from './chat-composer.js';
import { copyCode } from './chat-markdown.js';
import { actionClick } from './message-actions.js';
import { renderMessage, scrollToBottom, stateOf, versionClick } from './chat-render.js';
import { hydrateSettings, loadModels, settingsClick, settingsEscape } from './chat-settings.js';
import { shareClick } from './chat-share.js';
import { groupChats, markActiveChat, refreshUsage, sidebarClick, sidebarEscape } from './chat-sidebar.js';
import { connect, refreshIndicator, resubscribe } from './chat-socket.js';

document.addEventListener('click', (ev) => {
  const t = ev.target instanceof Element ? ev.target : null;
  if (!t) return;
  // Menus and popovers first: a click elsewhere closes them, then the click does its own thing.
  if (shareClick(t)) return;
  if (settingsClick(t)) return;
  const summary = t.closest('[data-reasoning-summary]');
  const reasoningOf = /** @type {HTMLElement | null} */ (summary?.closest('[data-message-id]') ?? null);
  if (reasoningOf) stateOf(reasoningOf).readerToggled = true;
  const copy = /** @type {HTMLElement | null} */ (t.closest('[data-copy-code]'));
  if (copy) {
    void copyCode(copy);
    return;
  }
  if (actionClick(t) || versionClick(t) || composerClick(t)) return;
  sidebarClick(t);
});

document.addEventListener('keydown', (ev) => {
  // Taken by a shortcut (shortcuts.js).
  if (ev.defaultPrevented) return;
  const t = ev.target instanceof Element ? ev.target : null;
  if (t instanceof HTMLTextAreaElement && t.name === 'content' && t.closest('form[data-chat-form]')) {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      sendMessage();
    }
    return;
  }
  if (ev.key !== 'Escape') return;
  if (t && settingsEscape(t)) {
    ev.preventDefault();
    return;
  }
  if (sidebarEscape(t)) {
    ev.preventDefault();
    return;
  }
  // Esc stops the answer that is streaming (as the Stop button does).
  if (streamingMessages().length && !(t && t.closest('dialog, [data-share-box], [data-settings-panel]'))) {
    ev.preventDefault();
    stopStreaming();
  }
});

// ---------------------------------------------------------------- each chat view (first load and every swap)

let hydrateQueued = false;
/** @type {HTMLElement | null} */
let hydratedView = null;
const hydrate = () => {
  hydrateQueued = false;
  refreshIndicator();
  const v = view();
  if (!v || v === hydratedView) return;
  hydratedView = v;
  if (v.dataset.pageTitle) document.title = v.dataset.pageTitle;
  for (const el of $$('[data-message-id]', v)) renderMessage(el);
  hydrateSettings(v);
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
  if (readonly()) {
    for (const el of $$('[data-message-id]')) renderMessage(el);
    return;
  }
  // htmx only restores history entries it marked; mark the first one so Back returns here.
  if (!history.state) history.replaceState({ htmx: true }, document.title, location.href);
  hydrate();
  groupChats();
  connect();
  void loadModels();
  void refreshUsage();
};
// A module runs after the document is parsed (as `defer` scripts do, in order with them).
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
