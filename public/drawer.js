// @ts-check
/**
 * The sidebar as a drawer on a phone (chat and Solver pages): the header's menu button
 * (`[data-sidebar-toggle]`) slides the sidebar (`[data-drawer]`) in from the left over a scrim; its
 * close button, Esc, a link in it or a tap outside close it, and the focus goes back to the menu
 * button. On wide screens the sidebar is always shown and the menu button is hidden (chat-phone.css).
 */

/** @returns {HTMLElement | null} */
const drawer = () => document.querySelector('[data-drawer]');
/** @returns {HTMLElement | null} */
const toggleButton = () => document.querySelector('[data-sidebar-toggle]');

export const drawerOpen = () => drawer()?.dataset.open === 'true';

/** @param {boolean} open @param {boolean} [refocus] */
export const setDrawerOpen = (open, refocus = false) => {
  const d = drawer();
  if (!d) return;
  d.dataset.open = String(open);
  document.body.toggleAttribute('data-drawer-open', open);
  for (const t of document.querySelectorAll('[data-sidebar-toggle]')) t.setAttribute('aria-expanded', String(open));
  if (open) {
    // The first thing to use in it: the close button (a screen reader starts at the list).
    /** @type {HTMLElement | null} */ (d.querySelector('[data-drawer-close]'))?.focus();
  } else if (refocus) toggleButton()?.focus();
};

document.addEventListener('click', (ev) => {
  const t = ev.target instanceof Element ? ev.target : null;
  if (!t) return;
  const toggle = t.closest('[data-sidebar-toggle]');
  if (toggle) {
    setDrawerOpen(toggle.getAttribute('aria-expanded') !== 'true');
    return;
  }
  if (!drawerOpen()) return;
  if (t.closest('[data-drawer-close]')) setDrawerOpen(false, true);
  // A chat (or a search hit, New chat…) was picked: the drawer makes way for it.
  else if (t.closest('[data-drawer] a')) setDrawerOpen(false);
  else if (!t.closest('[data-drawer]')) setDrawerOpen(false);
});

// Capture phase: Esc closes the drawer before the page's own Esc (which stops an answer), except
// where Esc already means something inside it (a rename or a delete being confirmed).
document.addEventListener(
  'keydown',
  (ev) => {
    if (ev.key !== 'Escape' || ev.defaultPrevented || !drawerOpen()) return;
    const t = ev.target instanceof Element ? ev.target : null;
    if (t && t.closest('[data-rename-form], [data-delete-confirm]')) return;
    ev.preventDefault();
    setDrawerOpen(false, true);
  },
  true,
);
