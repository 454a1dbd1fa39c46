/**
 * Audit assertions for integration tests: the recorder writes asynchronously (batched, after the
 * response), so tests wait for the rows instead of sleeping.
 *   const events = await waitForAudit(t.tdb.db, 3);   // at least 3 AuditEvents exist
 */
import type { AuditEvent } from '@medplum/fhirtypes';
import type { Db } from '../../src/store/db.js';

export interface AuditRowView {
  id: string;
  type_code: string;
  subtype_code: string | null;
  action: string;
  outcome: string;
  agent_who: string | null;
  patient_ref: string | null;
  entity_refs: string[];
  break_glass: boolean;
  resource: AuditEvent;
}

/** Every column, the resource whole (stored events keep their shared parts apart: audit_resource() joins them back). */
const AUDIT_VIEW = (db: Db) => ['id', 'recorded', 'type_code', 'subtype_code', 'action', 'outcome', 'agent_who', 'patient_ref', 'entity_refs', 'break_glass', db.raw('audit_resource(resource) AS resource')];

/** Wait until at least `n` AuditEvents are stored (default 5 s), then return all of them, oldest first. */
export async function waitForAudit(db: Db, n: number, opts: { timeoutMs?: number } = {}): Promise<AuditRowView[]> {
  const deadline = Date.now() + (opts.timeoutMs ?? 5_000);
  for (;;) {
    const rows = await auditEvents(db);
    if (rows.length >= n) return rows;
    if (Date.now() > deadline) throw new Error(`expected at least ${n} AuditEvents, found ${rows.length} after ${opts.timeoutMs ?? 5_000} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function auditEvents(db: Db): Promise<AuditRowView[]> {
  return (await db('audit_event').select(...AUDIT_VIEW(db)).orderBy([{ column: 'recorded', order: 'asc' }, { column: 'id', order: 'asc' }])) as AuditRowView[];
}

/** The AuditEvent recorded for one request (by X-Request-Id), waiting for it to be written. */
export async function auditFor(db: Db, requestId: string, timeoutMs = 5_000): Promise<AuditRowView> {
  const rows = await auditsFor(db, requestId, 1, timeoutMs);
  if (rows.length > 1) throw new Error(`${rows.length} AuditEvents for request ${requestId}`);
  return rows[0]!;
}

/** All AuditEvents of one request (one per patient concerned): waits until at least `n` exist. */
export async function auditsFor(db: Db, requestId: string, n = 1, timeoutMs = 5_000): Promise<AuditRowView[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = (await db('audit_event')
      .select(...AUDIT_VIEW(db))
      .whereRaw(`(resource->'entity')::jsonb @> ?::jsonb`, [JSON.stringify([{ what: { identifier: { value: requestId } } }])])
      .orderBy('patient_ref')) as AuditRowView[];
    if (rows.length >= n) return rows;
    if (Date.now() > deadline) throw new Error(`no AuditEvent for request ${requestId}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
