/**
 * The AuditEvent's JSON text, built on the request path without serialising what every event
 * repeats. Most of an event is shared, frozen parts (event type and subtypes, meta, source, the
 * server's agent, the client and user agents of a caller, entity codings); their text is computed
 * once per part and reused, so only the per-request facts (id, time, request id, patient, query)
 * are serialised per event. The output is exactly JSON.stringify's (same members, same order,
 * undefined members left out), which the unit test pins.
 */
const texts = new WeakMap<object, string>();

/** JSON text of a value; frozen objects and arrays are serialised once and their text reused. */
export function auditJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Object.isFrozen(v)) {
    let t = texts.get(v);
    if (t === undefined) {
      t = JSON.stringify(v);
      texts.set(v, t);
    }
    return t;
  }
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + (v[i] === undefined || typeof v[i] === 'function' ? 'null' : auditJson(v[i]));
    return out + ']';
  }
  let out = '{';
  let first = true;
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined || typeof x === 'function') continue;
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + auditJson(x);
    first = false;
  }
  return out + '}';
}

/** Freeze an object and everything in it (parts shared between events must never change). */
export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
