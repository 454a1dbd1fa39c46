/**
 * The AuditEvent's stored text, built on the request path without serialising what every event
 * repeats. Most of an event is shared, frozen parts (event type and subtypes, meta, source, the
 * agents of a caller, entity codings); their text is computed once per part and reused, so only
 * the per-request facts (id, time, request id, patient, query) are serialised per event.
 * Stored form (decisions.md D79): a shared part of some size is written as `{"$f":"<key>"}`, its
 * text kept once in audit_fragment under a hash of it (migration 0020); audit_resource() in SQL and
 * expandAuditJson() here put the text back, giving exactly JSON.stringify of the event (same
 * members, same order, undefined members left out), which the unit test pins.
 */
import { hash } from 'node:crypto';
import type { AuditFragment } from '../store/audit-store.js';

export type { AuditFragment };

interface Part {
  text: string;
  fragment?: AuditFragment;
  marker?: string;
}

/** Parts shorter than this stay inline: a marker (~30 bytes) would save little. */
const MIN_FRAGMENT = 64;
const parts = new WeakMap<object, Part>();

function partOf(v: object): Part {
  let p = parts.get(v);
  if (!p) {
    const text = JSON.stringify(v);
    if (text.length >= MIN_FRAGMENT) {
      const key = hash('sha256', text, 'base64url').slice(0, 22);
      p = { text, fragment: Object.freeze({ key, text }), marker: `{"$f":"${key}"}` };
    } else p = { text };
    parts.set(v, p);
  }
  return p;
}

/**
 * JSON text of a value; frozen objects and arrays are serialised once and their text reused. With
 * `fragments`, frozen parts of some size are written as markers and collected there (stored form).
 * The text is joined once from its pieces: one flat string is what waits in the audit queue, not a
 * rope of a hundred pieces for the garbage collector to trace and move.
 */
export function auditJson(v: unknown, fragments?: AuditFragment[]): string {
  const out: string[] = [];
  write(v, out, fragments);
  return out.join('');
}

/** FHIR element names: quoted as they are (JSON.stringify for anything else) */
const PLAIN_KEY = /^[A-Za-z0-9_$]+$/;

function write(v: unknown, out: string[], fragments: AuditFragment[] | undefined): void {
  if (v === null || typeof v !== 'object') {
    out.push(JSON.stringify(v));
  } else if (Object.isFrozen(v)) {
    const p = partOf(v);
    if (!fragments || !p.fragment) out.push(p.text);
    else {
      if (!fragments.includes(p.fragment)) fragments.push(p.fragment);
      out.push(p.marker!);
    }
  } else if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (i) out.push(',');
      if (v[i] === undefined || typeof v[i] === 'function') out.push('null');
      else write(v[i], out, fragments);
    }
    out.push(']');
  } else {
    let first = true;
    out.push('{');
    for (const k in v) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined || typeof x === 'function') continue;
      out.push(first ? '' : ',', PLAIN_KEY.test(k) ? `"${k}"` : JSON.stringify(k), ':');
      write(x, out, fragments);
      first = false;
    }
    out.push('}');
  }
}

const MARKER = /\{"\$f":"([A-Za-z0-9_-]+)"\}/g;

/** The stored text with its markers replaced by the fragments' text (what audit_resource() does in SQL). */
export function expandAuditJson(stored: string, fragments: ReadonlyMap<string, string>): string {
  return stored.replace(MARKER, (m, key: string) => fragments.get(key) ?? m);
}
