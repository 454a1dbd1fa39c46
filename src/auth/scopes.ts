/**
 * Scope grammar and the question "does this scope set allow interaction X on resource type T?".
 * - SMART v2 (App Launch 2.x): `patient|user|system/<Type|*>.<c?r?u?d?s?>` (+ optional `?query`,
 *   which we do not honour: a scope with a query is ignored rather than widened, fail closed).
 * - SMART v1: `.read` (= rs), `.write` (= cud), `.*` (= cruds).
 * - IHE IUA MHD transaction scopes (IHE IUA and SMART scopes): ITI-65 (create/update DocumentReference, List,
 *   Binary, Bundle), ITI-66 (List search/read), ITI-67 (DocumentReference search/read),
 *   ITI-68 (Binary read; Bundle read — our recommendation for the FHIR manifest form).
 * - RAD-107: the deployment-configured scope (config.auth.rad107Scope) for WADO-RS and QIDO-RS.
 */
export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

export interface SmartScope {
  context: 'patient' | 'user' | 'system';
  resourceType: string; // '*' = any
  interactions: Set<Interaction>;
}

const SMART = /^(patient|user|system)\/([A-Za-z]+|\*)\.([a-z*]+)$/;

export function parseSmartScope(scope: string): SmartScope | undefined {
  const m = SMART.exec(scope);
  if (!m) return undefined;
  const perm = m[3]!;
  let interactions: Interaction[];
  if (perm === 'read') interactions = ['r', 's'];
  else if (perm === 'write') interactions = ['c', 'u', 'd'];
  else if (perm === '*') interactions = ['c', 'r', 'u', 'd', 's'];
  else if (/^c?r?u?d?s?$/.test(perm) && perm.length > 0) interactions = perm.split('') as Interaction[];
  else return undefined;
  return { context: m[1] as SmartScope['context'], resourceType: m[2]!, interactions: new Set(interactions) };
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
}

/**
 * Does `scopes` allow `interaction` on `resourceType`? `extra` names scopes that grant it outright
 * (e.g. the RAD-107 scope for image retrieval).
 */
export function scopeGrants(scopes: readonly string[], resourceType: string, interaction: Interaction, extra: readonly string[] = []): ScopeGrant {
  let patient = false;
  for (const s of scopes) {
    if (extra.includes(s)) return { granted: true, patientOnly: false };
    const iua = IUA[s];
    if (iua && iua.types.includes(resourceType) && iua.interactions.includes(interaction)) return { granted: true, patientOnly: false };
    const p = parseSmartScope(s);
    if (!p || !p.interactions.has(interaction)) continue;
    if (p.resourceType !== '*' && p.resourceType !== resourceType) continue;
    if (p.context === 'patient') patient = true;
    else return { granted: true, patientOnly: false };
  }
  return { granted: patient, patientOnly: patient };
}

/** Scopes as a list, from a space-separated `scope` claim (RFC 8693 / SMART) or a `scp` array. */
export function scopesFromClaims(claims: Record<string, unknown>): string[] {
  const raw = claims.scope ?? claims.scp;
  if (typeof raw === 'string') return raw.split(/\s+/).filter(Boolean);
  if (Array.isArray(raw)) return raw.filter((x): x is string => typeof x === 'string');
  return [];
}
