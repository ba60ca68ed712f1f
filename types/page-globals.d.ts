/**
 * What the chat page's modules (public/chat.js and its modules, checked by `tsc -p tsconfig.public.json`) find on
 * `window`: the vendor scripts loaded before them (marked, DOMPurify, highlight.js, htmx) and
 * public/page.js (the page socket and the copy helpers). Types only; nothing here is served as code.
 */

interface PageSocketOptions {
  onFrame: (frame: any) => void;
  busy?: () => boolean;
  tuning?: object;
  onClose?: (ev: CloseEvent) => void;
}

interface PageSocket {
  connect(): void;
  /** Sends now; frames that must not be lost (`keep`) wait for the socket to be back. */
  send(frame: object, keep?: boolean): boolean;
  refreshIndicator(): void;
  onConnected(): void;
}

interface Window {
  marked?: any;
  DOMPurify?: any;
  hljs?: any;
  htmx?: { process(el: Element): void };
  PageSocket: { create(options: PageSocketOptions): PageSocket };
  copyText(text: string): Promise<boolean>;
  copyFromButton(button: HTMLElement, text: string, label: string): Promise<boolean>;
  /** Tests may shorten the page's timings by defining this before the page's scripts run. */
  __chatTuning?: Record<string, unknown>;
  /** Render costs and the last copied text, for tests and for measuring in the console. */
  __chat?: unknown;
}
