/** Errors and notices shown in the banner: always a readable message, with the gateway's code. */
import { ApiError } from './api.js';
import { clear, h, type Child } from './dom.js';

export function errorBox(err: unknown, context?: string): HTMLElement {
  const e = err instanceof ApiError ? err : undefined;
  const text = err instanceof Error ? err.message : String(err);
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('strong', {}, context ? `${context}: ` : 'Error: '),
    text,
    e ? h('span', { class: 'code' }, ` [${e.code}${e.status ? `, HTTP ${e.status}` : ''}]`) : null,
    e?.requestId ? h('span', { class: 'muted' }, ` request ${e.requestId}`) : null,
  );
}

export function banner(...children: Child[]): void {
  const b = document.getElementById('banner')!;
  clear(b);
  if (children.length) b.append(h('div', { class: 'banner-inner' }, ...children));
}
