/**
 * If-None-Match against the representation's entity tags, by weak comparison (RFC 9110 §13.1.2:
 * W/ prefixes ignored) — true when the client's copy is current (answer 304), or for `*`.
 */
export function notModified(ifNoneMatch: string | undefined, ...etags: string[]): boolean {
  if (!ifNoneMatch) return false;
  const opaque = (t: string) => t.trim().replace(/^W\//, '');
  const mine = new Set(etags.map(opaque));
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || mine.has(opaque(t)));
}
