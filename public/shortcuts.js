// @ts-check
/**
 * Keyboard shortcuts of the chat page, listed in the sidebar's "Keyboard shortcuts" disclosure
 * (`details[data-shortcuts]`): Ctrl/⌘+Shift+O starts a new chat, Shift+Esc puts the cursor in the
 * message box, Ctrl/⌘+/ opens or closes the list (Esc closes it, and the header's share/export
 * menu). Imported first by public/chat.js, so it runs before the page's other key
 * handlers (capture phase) and marks the keys it takes (`preventDefault`), so they leave them alone.
 */
/** @returns {HTMLDetailsElement | null} */
const help = () => document.querySelector('details[data-shortcuts]');

/** @param {boolean} open */
const setHelp = (open) => {
  const d = help();
  if (!d) return;
  d.open = open;
  const summary = d.querySelector('summary');
  if (summary) summary.focus();
};

/** @param {KeyboardEvent} ev */
const onKey = (ev) => {
  if (ev.defaultPrevented || ev.isComposing) return;
  const mod = ev.ctrlKey || ev.metaKey;
  const key = ev.key.toLowerCase();
  if (mod && ev.shiftKey && key === 'o') {
    const link = /** @type {HTMLElement | null} */ (document.querySelector('[data-new-chat]'));
    if (!link) return;
    ev.preventDefault();
    link.click();
    return;
  }
  if (ev.shiftKey && !mod && ev.key === 'Escape') {
    const box = /** @type {HTMLTextAreaElement | null} */ (document.querySelector('form[data-chat-form] textarea[name=content]'));
    if (!box) return;
    ev.preventDefault();
    box.focus();
    return;
  }
  if (mod && !ev.shiftKey && (ev.key === '/' || ev.code === 'Slash')) {
    const d = help();
    if (!d) return;
    ev.preventDefault();
    setHelp(!d.open);
    return;
  }
  const d = help();
  if (ev.key === 'Escape' && d && d.open) {
    ev.preventDefault();
    setHelp(false);
    return;
  }
  // Esc closes the header's share/export menu, focus back on it.
  const menu = /** @type {HTMLDetailsElement | null} */ (document.querySelector('details[data-chat-menu][open]'));
  if (ev.key === 'Escape' && menu) {
    ev.preventDefault();
    menu.open = false;
    const summary = menu.querySelector('summary');
    if (summary) summary.focus();
  }
};

document.addEventListener('keydown', onKey, true);
