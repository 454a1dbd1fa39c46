/**
 * Reading the configuration schema itself: the keys an object accepts (to suggest the nearest one
 * for a typo) and the documented rows of the README configuration table.
 */
import * as z from 'zod';

type Def = { type: string; values?: unknown[]; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType; in?: z.ZodType; out?: z.ZodType; options?: z.ZodType[]; valueType?: z.ZodType };
const def = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The object schemas reachable at this level (through optional/default/pipe/union wrappers). */
function objectsOf(s: z.ZodType): Array<Record<string, z.ZodType>> {
  const d = def(s);
  switch (d.type) {
    case 'object':
      return [d.shape!];
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
      return objectsOf(d.innerType!);
    case 'pipe':
      return [...objectsOf(d.in!), ...objectsOf(d.out!)];
    case 'union':
      return d.options!.flatMap(objectsOf);
    default:
      return [];
  }
}

/** Element schema of an array (or record values) reachable at this level. */
function elementsOf(s: z.ZodType): z.ZodType[] {
  const d = def(s);
  if (d.type === 'array') return [d.element!];
  if (d.type === 'record') return [d.valueType!];
  if (['optional', 'nullable', 'default', 'prefault'].includes(d.type)) return elementsOf(d.innerType!);
  if (d.type === 'pipe') return [...elementsOf(d.in!), ...elementsOf(d.out!)];
  return [];
}

/** Keys accepted by the object at `path` (numbers step into arrays). */
export function knownKeys(root: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  let level: z.ZodType[] = [root];
  for (const step of path) {
    level = typeof step === 'number' ? level.flatMap(elementsOf) : level.flatMap(objectsOf).flatMap((shape) => (shape[String(step)] ? [shape[String(step)]!] : []));
  }
  return [...new Set(level.flatMap(objectsOf).flatMap((shape) => Object.keys(shape)))];
}

export function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** The known key nearest to `key`, if it is close enough to be a plausible typo. */
export function nearest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = levenshtein(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

export interface KeyDoc {
  key: string;
  type: string;
  default?: string;
  description: string;
}

function meta(s: z.ZodType): Record<string, unknown> {
  return (z.globalRegistry.get(s) as Record<string, unknown> | undefined) ?? {};
}

function typeName(m: Record<string, unknown>, s: z.ZodType): string {
  if (Array.isArray(m.enum)) return (m.enum as string[]).join(' | ');
  if (def(s).type === 'literal') return def(s).values!.join(' | ');
  if (m.type === 'array') return 'list of strings';
  if (typeof m.type === 'string') return m.format === 'uri' ? 'URL' : String(m.type);
  if (objectsOf(s).length) return 'object';
  if (elementsOf(s).length) return 'list';
  return 'value';
}

/** Every documented key, depth first, with `[]` for list elements. */
export function describeKeys(root: z.ZodType, prefix = ''): KeyDoc[] {
  const out: KeyDoc[] = [];
  for (const shape of objectsOf(root)) {
    for (const [k, s] of Object.entries(shape)) {
      const key = prefix ? `${prefix}.${k}` : k;
      const m = meta(s);
      const seen = out.find((r) => r.key === key);
      if (seen) {
        // the same key in another branch of a union (e.g. auth.type): merge the literal values
        if (def(s).type === 'literal') seen.type = `${seen.type} | ${typeName(m, s)}`;
        continue;
      }
      const dflt = m.default === undefined ? undefined : JSON.stringify(m.default);
      out.push({ key, type: typeName(m, s), default: dflt, description: String(m.description ?? '') });
      out.push(...describeKeys(s, key));
      for (const el of elementsOf(s)) out.push(...describeKeys(el, `${key}[]`));
    }
  }
  return out;
}
