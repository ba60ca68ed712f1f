// @ts-check
/**
 * The page's one WebSocket (public/page.js keeps it: reconnects, watchdog, connection indicator)
 * and what each server frame does to the page: pieces applied in `seq` order (a gap asks for a
 * `resume`), answers started, retried and ended, new chats and titles, errors in words. After a
 * (re)connect or a chat swap, the shown chat is watched again and every streaming answer resumed.
 */
import { $, BASE, announce, isShown, messageEl, shownChatId, view } from './chat-dom.js';
import { describeError } from './errors.js';
import { pendingSends, settleSend, streamingMessages, takeBack, textarea, updateComposer, refreshActions } from './chat-composer.js';
import {
  createMessage,
  markThoughtDone,
  nearBottom,
  noteOmitted,
  renderChips,
  renderMessage,
  renderRetry,
  replaceEditedBranch,
  replaceOldVersion,
  scheduleRender,
  scrollToBottom,
  showError,
  stateOf,
  unschedule,
} from './chat-render.js';
import { decorate } from './message-actions.js';
import { openSettings } from './chat-settings.js';
import { showChatTools } from './chat-share.js';
import { addChatToList, markActiveChat, scheduleUsage, setChatTitle, touchChat } from './chat-sidebar.js';

/** @typedef {import('./chat-dom.js').Frame} Frame */

/** @type {PageSocket | null} */
let socket = null;

/** Sends a frame (`keep`: it waits for the socket to be back rather than being dropped). @param {Frame} frame @param {boolean} [keep] */
export const sendFrame = (frame, keep) => {
  if (socket) socket.send(frame, keep);
};

/** @param {HTMLElement} el @param {Frame} frame */
const applyPiece = (el, frame) => {
  const st = stateOf(el);
  const seq = frame.seq || 0;
  if (seq <= st.seq) return;
  if (seq > st.seq + 1) {
    // A gap (we joined mid-stream or lost frames): hold this one and ask for the missing ones.
    st.waiting.set(seq, frame);
    if (Date.now() - st.askedResume > 3000) {
      st.askedResume = Date.now();
      sendFrame({ type: 'resume', message_id: frame.message_id, after_seq: st.seq });
    }
    return;
  }
  /** @type {Frame | undefined} */
  let next = frame;
  while (next) {
    if (next.type === 'agent_reasoning') st.reasoning += next.content || '';
    else {
      if (!st.raw && st.reasoning) markThoughtDone(el, st);
      st.raw += next.content || '';
    }
    st.seq = next.seq || 0;
    st.waiting.delete(st.seq);
    next = st.waiting.get(st.seq + 1);
  }
  scheduleRender(el);
};

/** The shown answer a frame is about, made when it is not on the page yet. @param {Frame} frame */
const assistantEl = (frame) => {
  let el = messageEl(frame.message_id || '');
  if (!el) {
    el = createMessage('assistant', frame.message_id || null, 'streaming');
    el.dataset.seq = '0';
    updateComposer();
  }
  return el;
};

/** Message ids already announced: a replayed end frame is not read out twice. */
const announced = new Set();

/** @type {Record<string, (frame: Frame) => void>} */
const handlers = {
  connected() {
    socket?.onConnected();
    resubscribe();
  },

  chat_created(frame) {
    const chatId = frame.chat_id || '';
    addChatToList(chatId, frame.title);
    const p = frame.id && pendingSends.get(frame.id);
    const v = view();
    if (v && p && p.chatId === '' && p.el.isConnected && shownChatId() === '') {
      p.chatId = chatId;
      v.dataset.chatId = chatId;
      const url = `${BASE}/chat/${chatId}`;
      // htmx restores history entries only when they carry its marker.
      history.replaceState({ htmx: true }, document.title, location.href);
      history.pushState({ htmx: true }, '', url);
      if (frame.title) setChatTitle(chatId, frame.title);
      showChatTools();
      markActiveChat();
    }
  },

  chat_updated(frame) {
    setChatTitle(frame.chat_id || '', frame.title);
    // A generated title was a model call of its own: its tokens count too.
    scheduleUsage();
  },

  user_message(frame) {
    touchChat(frame.chat_id || '');
    const p = frame.id ? pendingSends.get(frame.id) : null;
    if (p) p.acked = true;
    if (!isShown(frame) || messageEl(frame.message_id || '')) return;
    let el = p && p.el.isConnected ? p.el : null;
    if (el) {
      // Stored: the empty chat's suggestions (hidden while it waited) are gone for good.
      view()?.querySelector('[data-empty]')?.remove();
      el.dataset.messageId = frame.message_id;
      el.dataset.status = 'complete';
      delete el.dataset.clientId;
      decorate(el);
    } else {
      el = createMessage('user', frame.message_id || null, 'complete');
      stateOf(el).raw = frame.content || '';
      if (Array.isArray(frame.attachments) && frame.attachments.length) renderChips(el, frame.attachments);
      renderMessage(el);
      scrollToBottom();
    }
    // An edit: the edited message and what followed it leave the list (now this one's previous version).
    if (Array.isArray(frame.previous_versions) && frame.previous_versions.length) replaceEditedBranch(frame, el);
  },

  agent_response_start(frame) {
    if (frame.id) settleSend(frame.id);
    if (isShown(frame)) {
      const stick = nearBottom();
      if (Array.isArray(frame.previous_versions) && frame.previous_versions.length) replaceOldVersion(frame);
      const el = assistantEl(frame);
      if (frame.model) el.dataset.model = frame.model;
      // A regenerated answer has its own count: the replaced one's note is updated or removed.
      if ((frame.omitted_turns || 0) > 0 || frame.previous_versions) noteOmitted(el, frame.omitted_turns || 0);
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
      unschedule(el);
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
        const text = ($('[data-content]', el)?.textContent || '').trim();
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
    if (p && frame.id && !frame.message_id) {
      // The send was refused before any answer started.
      settleSend(frame.id);
      if (!p.acked) {
        takeBack(p);
        if (problem.setting) openSettings(problem.setting, problem.text);
        showError(`Not sent: ${problem.text}${p.fromBox ? ' Your message is still in the box.' : ''}`, null, problem.detail);
        updateComposer(true);
        // A refused edit reopened its editor (takeBack), which has the keyboard.
        if (!problem.setting && !p.edit) textarea()?.focus();
        return;
      }
    }
    showError(problem.text, target, problem.detail);
    updateComposer(true);
  },

  subscribed() {},
  pong() {},
};

/** After (re)connecting or a swap: watch the shown chat and resume every answer still streaming. */
export const resubscribe = () => {
  const chatId = shownChatId();
  if (chatId) sendFrame({ type: 'subscribe', chat_id: chatId });
  for (const el of streamingMessages()) {
    const st = stateOf(el);
    st.askedResume = Date.now();
    sendFrame({ type: 'resume', message_id: el.dataset.messageId, after_seq: st.seq });
  }
};

/** Opens the page's socket (once). */
export const connect = () => {
  if (socket) return;
  socket = window.PageSocket.create({
    tuning: window.__chatTuning,
    onFrame: (frame) => {
      const handler = handlers[/** @type {Frame} */ (frame).type];
      if (handler) handler(frame);
    },
    busy: () => streamingMessages().length > 0 || pendingSends.size > 0,
    onClose: (ev) => {
      if (ev.code === 1009) showError('That message was too large for the server: shorten it or attach less.');
    },
  });
  socket.connect();
};

/** The connection indicator after a swap that replaced it. */
export const refreshIndicator = () => socket?.refreshIndicator();
