/**
 * SQL for authorisation: a referring clinician's care relationship arrives as patient business
 * identifiers (system|value, issuer-aware — product ask 7); this resolves them to gateway Patient
 * ids in one query. Results are cached briefly (a burst of viewer requests costs one query).
 */
import type { Db } from './db.js';

export interface PatientIdentifier {
  system: string;
  value: string;
}

export interface PatientResolver {
  resolve(identifiers: readonly PatientIdentifier[]): Promise<string[]>;
}

export function createPatientResolver(db: Db, opts: { ttlMs?: number; maxEntries?: number } = {}): PatientResolver {
  const ttl = opts.ttlMs ?? 30_000;
  const max = opts.maxEntries ?? 5_000;
  const cache = new Map<string, { ids: Promise<string[]>; until: number }>();
  return {
    async resolve(identifiers) {
      if (!identifiers.length) return [];
      const key = identifiers.map((i) => `${i.system}|${i.value}`).sort().join('\n');
      const now = Date.now();
      const hit = cache.get(key);
      if (hit && hit.until > now) return hit.ids;
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
      const ids = (async () => {
        const systems = identifiers.map((i) => i.system);
        const values = identifiers.map((i) => i.value);
        const rows = (await db.raw(
          `SELECT DISTINCT pi.patient_id FROM patient_identifier pi
             JOIN unnest(?::text[], ?::text[]) AS want(system, value)
               ON pi.system = want.system AND pi.value = want.value
            ORDER BY 1`,
          [systems, values],
        )) as { rows: { patient_id: string }[] };
        return rows.rows.map((r) => r.patient_id);
      })();
      cache.set(key, { ids, until: now + ttl });
      ids.catch(() => cache.delete(key));
      return ids;
    },
  };
}
