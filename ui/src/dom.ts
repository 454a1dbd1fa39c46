/** A tiny element builder: h('a', { href }, 'text', child). Text is always set as text (no HTML injection). */
type Attrs = Record<string, string | number | boolean | undefined | null | ((e: Event) => void)>;
export type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, '').toLowerCase(), v as EventListener);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.firstChild.remove();
}

/** Replace <main>'s content and move focus there (screen readers and keyboard users land on it). */
export function show(title: string, ...children: Child[]): HTMLElement {
  const main = document.getElementById('main')!;
  clear(main);
  document.title = `${title} · mado-gateway`;
  append(main, children);
  main.focus({ preventScroll: true });
  return main;
}

/** DICOM DA (YYYYMMDD) or FHIR date/dateTime → YYYY-MM-DD (as given, no time-zone shift). */
export function formatDate(s: string | undefined): string {
  if (!s) return '';
  const m = /^(\d{4})-?(\d{2})?-?(\d{2})?/.exec(s);
  if (!m) return s;
  return [m[1], m[2], m[3]].filter(Boolean).join('-');
}

export function formatDateTime(s: string | undefined): string {
  if (!s) return '';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Save a Blob as a file (a temporary object URL; nothing leaves the browser). */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename, class: 'hidden' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
