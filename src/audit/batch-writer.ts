/**
 * Writes the recorder's queue to audit_event in batches. A batch the database refuses as data
 * (not as an outage) must neither block the audit trail nor lose the other events in it: the
 * batch is then written row by row, and a refused row is written once more with the characters
 * PostgreSQL cannot store in text (U+0000) or JSON text cannot carry (lone UTF-16 surrogates)
 * replaced by U+FFFD. Only a row refused even then is given up (logged by id, counted).
 * An outage (connection refused, shutdown, …) leaves everything not yet written queued for the
 * next attempt; rows already written are never written twice (ON CONFLICT (id) DO NOTHING).
 */
import type { AuditEvent } from '@medplum/fhirtypes';
import type { Logger } from '../log.js';
import { expandAuditJson } from './json.js';
import { insertAuditEvents, type AuditRow } from '../store/audit-store.js';
import type { Db } from '../store/db.js';

export interface QueueState {
  queue: AuditRow[];
  /** rows at the head of the queue being written now (overflow never drops them) */
  inFlight: number;
  written: number;
  /** rows stored only after their text was cleaned */
  cleaned: number;
  /** rows the database refused even cleaned (lost) */
  rejected: number;
  failures: number;
}

/** SQLSTATE classes of errors caused by the data, not by the database's state: 22 data exception, 23 integrity, 54 limit exceeded. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23|54)/.test(code);
}

/** Write the queue head-first in batches; false when the database became unavailable (retry later). */
export async function writeQueue(db: Db, log: Logger, st: QueueState, batchSize: number): Promise<boolean> {
  while (st.queue.length) {
    const batch = st.queue.slice(0, batchSize);
    st.inFlight = batch.length;
    try {
      await insertAuditEvents(db, batch);
      done(st, batch.length);
    } catch (err) {
      if (!isDataError(err) || !(await writeRowByRow(db, log, st, batch))) {
        st.failures++;
        log.error({ err: { name: (err as Error).name, code: (err as { code?: string }).code }, queued: st.queue.length }, 'audit write failed; will retry');
        return false;
      }
    } finally {
      st.inFlight = 0;
    }
  }
  return true;
}

function done(st: QueueState, n: number): void {
  st.queue.splice(0, n);
  st.written += n;
  st.inFlight = Math.max(0, st.inFlight - n);
}

async function writeRowByRow(db: Db, log: Logger, st: QueueState, batch: readonly AuditRow[]): Promise<boolean> {
  for (const row of batch) {
    const outcome = (await attempt(db, row)) ?? (await attempt(db, cleanedRow(row)));
    if (outcome === 'unavailable') return false;
    if (outcome === undefined) {
      // Nothing more can be done with this row; never log its content (identifiers, PHI).
      st.rejected++;
      log.error({ auditEventId: row.id }, 'audit event refused by the database even after cleaning: lost');
      st.queue.splice(0, 1);
      st.inFlight = Math.max(0, st.inFlight - 1);
      continue;
    }
    if (outcome === 'cleaned') {
      st.cleaned++;
      log.warn({ auditEventId: row.id }, 'audit event stored with unstorable characters replaced');
    }
    done(st, 1);
  }
  return true;
}

/** 'written' | 'unavailable' | undefined (the database refused this row's data). */
async function attempt(db: Db, row: AuditRow & { cleaned?: true }): Promise<'written' | 'cleaned' | 'unavailable' | undefined> {
  try {
    await insertAuditEvents(db, [row]);
    return row.cleaned ? 'cleaned' : 'written';
  } catch (err) {
    return isDataError(err) ? undefined : 'unavailable';
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const cleanText = (s: string): string => s.replace(/\u0000/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
const cleanOpt = (s: string | null): string | null => (s === null ? null : cleanText(s));

function cleanedRow(r: AuditRow): AuditRow & { cleaned: true } {
  const whole = r.resource ?? (JSON.parse(expandAuditJson(r.json, new Map(r.fragments.map((f) => [f.key, f.text])))) as AuditEvent);
  const resource = JSON.parse(JSON.stringify(whole, (_k, v: unknown) => (typeof v === 'string' ? cleanText(v) : v))) as AuditRow['resource'];
  return {
    ...r,
    typeCode: cleanText(r.typeCode),
    subtypeCode: cleanOpt(r.subtypeCode),
    action: cleanText(r.action),
    outcome: cleanText(r.outcome),
    agentWho: cleanOpt(r.agentWho),
    patientRef: cleanOpt(r.patientRef),
    entityRefs: r.entityRefs.map(cleanText),
    resource,
    json: JSON.stringify(resource),
    fragments: [],
    cleaned: true,
  };
}
