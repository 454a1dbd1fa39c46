/**
 * Scope grammar and the question "does this scope set allow interaction X on resource type T?".
 * - SMART v2 (App Launch 2.x): `patient|user|system/<Type|*>.<c?r?u?d?s?>`, with an optional
 *   granular `?param=value[&…]` (§ "Finer-grained resource constraints using search parameters"):
 *   DocumentReference category, type, security-label; ImagingStudy modality. Such a scope grants
 *   only what matches (applied in SQL, src/store/access-sql.ts). A query with any other parameter
 *   is ignored (fail closed: never widened).
 * - SMART v1: `.read` (= rs), `.write` (= cud), `.*` (= cruds).
 * - IHE IUA MHD transaction scopes (IHE IUA and SMART scopes): ITI-65 (create/update DocumentReference, List,
 *   Binary, Bundle), ITI-66 (List search/read), ITI-67 (DocumentReference search/read),
 *   ITI-68 (Binary read; Bundle read — our recommendation for the FHIR manifest form).
 * - RAD-107: the deployment-configured scope (config.auth.rad107Scope) for WADO-RS and QIDO-RS.
 */
import { memo } from '../model/memo.js';
import type { RestrictedParam, ScopeQuery } from '../model/scope-restriction.js';

export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

export interface SmartScope {
  context: 'patient' | 'user' | 'system';
  resourceType: string; // '*' = any
  interactions: Set<Interaction>;
  /** granular scope: what it is narrowed to (undefined: the whole type) */
  query?: ScopeQuery;
}

const SMART = /^(patient|user|system)\/([A-Za-z]+|\*)\.([a-z*]+)$/;

/** Parameters a scope query may use, per resource type (manifest_token codes). */
const QUERY_PARAMS: Record<string, RestrictedParam[]> = {
  DocumentReference: ['category', 'type', 'security-label'],
  ImagingStudy: ['modality'],
};

// Every request of a token re-checks the same few scope strings: parse each once (bounded memo;
// the parsed scopes are only read).
const parsed = new Map<string, SmartScope | undefined>();
const PARSED_MAX = 10_000;

export function parseSmartScope(scope: string): SmartScope | undefined {
  return memo(parsed, PARSED_MAX, scope, () => parseSmartScopeUncached(scope));
}

function parseSmartScopeUncached(scope: string): SmartScope | undefined {
  const q = scope.indexOf('?');
  const m = SMART.exec(q < 0 ? scope : scope.slice(0, q));
  if (!m) return undefined;
  let query: ScopeQuery | undefined;
  if (q >= 0) {
    query = parseScopeQuery(m[2]!, scope.slice(q + 1));
    if (!query) return undefined;
  }
  const perm = m[3]!;
  let interactions: Interaction[];
  if (perm === 'read') interactions = ['r', 's'];
  else if (perm === 'write') interactions = ['c', 'u', 'd'];
  else if (perm === '*') interactions = ['c', 'r', 'u', 'd', 's'];
  else if (/^c?r?u?d?s?$/.test(perm) && perm.length > 0) interactions = perm.split('') as Interaction[];
  else return undefined;
  return { context: m[1] as SmartScope['context'], resourceType: m[2]!, interactions: new Set(interactions), ...(query ? { query } : {}) };
}

/** `category=http://loinc.org|18748-4,…&type=…` → conditions; undefined when not supported. */
function parseScopeQuery(resourceType: string, q: string): ScopeQuery | undefined {
  const allowed = QUERY_PARAMS[resourceType];
  if (!allowed || !q) return undefined;
  const out: ScopeQuery = [];
  for (const [name, raw] of new URLSearchParams(q)) {
    if (!allowed.includes(name as RestrictedParam) || !raw) return undefined;
    const values = raw.split(',').map((v) => {
      const bar = v.indexOf('|');
      if (bar < 0) return { code: v };
      return { system: v.slice(0, bar), code: v.slice(bar + 1) || undefined };
    });
    if (values.some((v) => v.code === undefined && !v.system)) return undefined;
    out.push({ param: name as RestrictedParam, values });
  }
  return out.length ? out : undefined;
}

/** IUA transaction scopes → (resource types, interactions) they authorise. */
const IUA: Record<string, { types: string[]; interactions: Interaction[] }> = {
  'ITI-65': { types: ['DocumentReference', 'List', 'Binary', 'Bundle', 'DocumentManifest'], interactions: ['c', 'u'] },
  'ITI-66': { types: ['List'], interactions: ['r', 's'] },
  'ITI-67': { types: ['DocumentReference'], interactions: ['r', 's'] },
  'ITI-68': { types: ['Binary', 'Bundle'], interactions: ['r'] },
};

export interface ScopeGrant {
  granted: boolean;
  /** true when only patient/ scopes grant it: access is limited to the token's patient context */
  patientOnly: boolean;
  /** granular scopes: the grant holds only for what matches one of these (undefined: not narrowed) */
  restrictions?: ScopeQuery[];
}

/**
 * Does `scopes` allow `interaction` on `resourceType`? `extra` names scopes that grant it outright
 * (e.g. the RAD-107 scope for image retrieval). Scopes not limited to the patient context win over
 * patient/ scopes (which would only add the launch patient: not widened, fail closed).
 */
export function scopeGrants(scopes: readonly string[], resourceType: string, interaction: Interaction, extra: readonly string[] = []): ScopeGrant {
  const wide: Array<ScopeQuery | undefined> = [];
  const patient: Array<ScopeQuery | undefined> = [];
  for (const s of scopes) {
    if (extra.includes(s)) return { granted: true, patientOnly: false };
    const iua = IUA[s];
    if (iua && iua.types.includes(resourceType) && iua.interactions.includes(interaction)) return { granted: true, patientOnly: false };
    const p = parseSmartScope(s);
    if (!p || !p.interactions.has(interaction)) continue;
    if (p.resourceType !== '*' && p.resourceType !== resourceType) continue;
    (p.context === 'patient' ? patient : wide).push(p.query);
  }
  const chosen = wide.length ? wide : patient;
  if (!chosen.length) return { granted: false, patientOnly: false };
  if (chosen.some((q) => q === undefined)) return { granted: true, patientOnly: !wide.length };
  return { granted: true, patientOnly: !wide.length, restrictions: chosen as ScopeQuery[] };
}

/** Scopes as a list, from a space-separated `scope` claim (RFC 8693 / SMART) or a `scp` array. */
export function scopesFromClaims(claims: Record<string, unknown>): string[] {
  const raw = claims.scope ?? claims.scp;
  if (typeof raw === 'string') return raw.split(/\s+/).filter(Boolean);
  if (Array.isArray(raw)) return raw.filter((x): x is string => typeof x === 'string');
  return [];
}
