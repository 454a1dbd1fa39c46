/**
 * SQL for an AccessRestriction (src/model/scope-restriction.ts): a condition on a manifest id
 * column, over manifest_token (category, type, modality and security-label rows of each
 * manifest; both DocumentReferences of a manifest share them). Values go through bindings (`?`).
 */
import { CONFIDENTIALITY_SYSTEMS, isRestricted, type AccessRestriction, type ScopeQuery } from '../model/scope-restriction.js';

/** The condition (undefined when nothing is restricted); pushes its bindings onto `b`. */
export function restrictionSql(r: AccessRestriction | undefined, manifestCol: string, b: unknown[]): string | undefined {
  if (!isRestricted(r)) return undefined;
  const parts: string[] = [];
  for (const group of r.scopeGroups ?? []) parts.push(`(${group.map((q) => queryCond(q, manifestCol, b)).join(' OR ') || 'FALSE'})`);
  if (r.hiddenConfidentiality?.length) {
    b.push(r.hiddenConfidentiality, CONFIDENTIALITY_SYSTEMS);
    parts.push(`NOT EXISTS (SELECT 1 FROM manifest_token ct WHERE ct.manifest_id = ${manifestCol} AND ct.code = 'security-label' AND ct.value = ANY(?::text[]) AND ct.system = ANY(?::text[]))`);
  }
  return parts.join(' AND ');
}

function queryCond(q: ScopeQuery, col: string, b: unknown[]): string {
  if (!q.length) return 'TRUE';
  return `(${q
    .map((c) => {
      b.push(c.param);
      const alts = c.values.map((v) => {
        const conds: string[] = [];
        if (v.system !== undefined) {
          b.push(v.system);
          conds.push('st.system = ?');
        }
        if (v.code !== undefined) {
          b.push(v.code);
          conds.push('st.value = ?');
        }
        return conds.length ? `(${conds.join(' AND ')})` : 'TRUE';
      });
      return `EXISTS (SELECT 1 FROM manifest_token st WHERE st.manifest_id = ${col} AND st.code = ? AND (${alts.join(' OR ') || 'FALSE'}))`;
    })
    .join(' AND ')})`;
}
