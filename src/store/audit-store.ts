/**
 * audit_event SQL: batched inserts (the audit recorder's flush) and the AuditEvent search/read
 * used by /fhir/AuditEvent (administrators only). Patients are searched through entity_refs
 * ("Patient/{id}" entries, GIN-indexed) so a multi-patient event is found for each patient.
 */
import type { AuditEvent } from '@medplum/fhirtypes';
import { withConnection, type Db } from './db.js';

/** One shared part of stored AuditEvents: its key (a hash of its text) and its JSON text (migration 0020). */
export interface AuditFragment {
  readonly key: string;
  readonly text: string;
}

export interface AuditRow {
  id: string;
  recorded: Date;
  typeCode: string;
  subtypeCode: string | null;
  action: string;
  outcome: string;
  agentWho: string | null;
  patientRef: string | null;
  entityRefs: string[];
  breakGlass: boolean;
  /** the AuditEvent; a queued row keeps only `json` (the recorder drops the object once built) */
  resource?: AuditEvent;
  /** `resource` as stored: JSON text whose shared parts may be `{"$f":key}` markers (src/audit/json.ts) */
  json: string;
  /** the shared parts the markers in `json` stand for */
  fragments: readonly AuditFragment[];
  /** set by insertAuditEvents once the row has been sent: a later write of it may find it stored */
  sent?: boolean;
}

const AUDIT_COLUMNS = 'id, recorded, type_code, subtype_code, action, outcome, agent_who, patient_ref, entity_refs, break_glass, resource';
const PARAMS_PER_ROW = AUDIT_COLUMNS.split(',').length;
/** Largest INSERT (rows): with PARAMS_PER_ROW parameters a row it stays far below the protocol's 65,535. */
const MAX_ROWS_PER_STATEMENT = 512;

/**
 * Write a batch of AuditEvents: one transaction of multi-row INSERTs whose values travel as
 * parameters (no JSON wrapper for PostgreSQL to parse and unpack per row; the resource column is
 * `json`, migration 0017). The INSERTs are named prepared statements of power-of-two row counts
 * (a batch of 65 = 64 + 1), so each connection parses and plans each size once instead of once per
 * batch (decisions.md D76). A row sent before (a retry after an outage whose commit may have
 * happened unacknowledged, the row-by-row fallback) is written with ON CONFLICT (id) DO NOTHING, so
 * a retry is harmless; a row's first write is a plain INSERT, which spares PostgreSQL the
 * speculative insertion (~5 µs per row, D84).
 *
 * SET LOCAL synchronous_commit: the commit does not wait for the WAL flush, so an audit batch
 * never holds a pool connection through an fsync while searches wait. The durability window this
 * opens (≤ 3 × wal_writer_delay) is of the same order as the recorder's in-memory queue, which a
 * crash loses anyway; an orderly shutdown flushes both.
 */
export async function insertAuditEvents(db: Db, rows: readonly AuditRow[]): Promise<void> {
  if (!rows.length) return;
  const fresh = freshFragments(db, rows);
  await withConnection(db, async (conn) => {
    await conn.query('BEGIN; SET LOCAL synchronous_commit TO OFF');
    try {
      if (fresh.size) await conn.query({ name: 'audit_fragment_insert', text: FRAGMENT_INSERT, values: [[...fresh.keys()], [...fresh.values()]] });
      for (const statement of insertStatements(rows)) await conn.query(statement);
      await conn.query('COMMIT');
      rememberFragments(db, fresh.keys());
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => undefined); // the connection may be gone already
      throw err;
    }
  });
}

const FRAGMENT_INSERT = 'INSERT INTO audit_fragment (key, json) SELECT * FROM unnest($1::text[], $2::json[]) ON CONFLICT (key) DO NOTHING';

// Fragment keys known to be stored, per database: a key is a hash of the text, so a stored key
// never needs writing again. Added only after the commit; bounded (forgetting costs one rewrite).
const storedFragments = new WeakMap<Db, Set<string>>();

function freshFragments(db: Db, rows: readonly AuditRow[]): Map<string, string> {
  const known = storedFragments.get(db);
  const fresh = new Map<string, string>();
  for (const r of rows) for (const f of r.fragments) if (!known?.has(f.key)) fresh.set(f.key, f.text);
  return fresh;
}

function rememberFragments(db: Db, keys: Iterable<string>): void {
  let known = storedFragments.get(db);
  if (!known || known.size > 100_000) storedFragments.set(db, (known = new Set()));
  for (const k of keys) known.add(k);
}

/** The largest power of two ≤ remaining (capped): the row count of the next INSERT. */
function statementRows(remaining: number): number {
  let n = 1;
  while (n * 2 <= remaining && n * 2 <= MAX_ROWS_PER_STATEMENT) n *= 2;
  return n;
}

const statementTexts = new Map<string, string>();

function insertText(name: string, rows: number, again: boolean): string {
  let text = statementTexts.get(name);
  if (!text) {
    const tuples = Array.from({ length: rows }, (_, r) => `(${Array.from({ length: PARAMS_PER_ROW }, (_, c) => `$${r * PARAMS_PER_ROW + c + 1}`).join(',')})`);
    text = `INSERT INTO audit_event (${AUDIT_COLUMNS}) VALUES ${tuples.join(',')}${again ? ' ON CONFLICT (id) DO NOTHING' : ''}`;
    statementTexts.set(name, text);
  }
  return text;
}

type Statement = { name: string; text: string; values: unknown[] };

/** The batch's INSERTs (power-of-two row counts); rows sent before go through the ON CONFLICT form. Marks every row sent. */
function insertStatements(rows: readonly AuditRow[]): Statement[] {
  const out: Statement[] = [];
  for (let i = 0; i < rows.length; ) {
    const n = statementRows(rows.length - i);
    const chunk = rows.slice(i, i + n);
    const again = chunk.some((r) => r.sent);
    const values: unknown[] = [];
    for (const r of chunk) values.push(r.id, r.recorded, r.typeCode, r.subtypeCode, r.action, r.outcome, r.agentWho, r.patientRef, r.entityRefs, r.breakGlass, r.json);
    const name = `audit_event_insert_${again ? 'again_' : ''}${n}`;
    out.push({ name, text: insertText(name, n, again), values });
    i += n;
  }
  for (const r of rows) r.sent = true;
  return out;
}

export interface AuditQuery {
  /** [prefix, ISO instant] pairs: ge, le, gt, lt, eq (eq = whole given precision handled by caller) */
  dates: Array<{ op: 'ge' | 'gt' | 'le' | 'lt'; at: Date }>;
  patients: string[]; // "Patient/x" (OR)
  agents: string[]; // subject (OR)
  entities: string[]; // entity ref (OR)
  types: string[]; // type code (OR)
  subtypes: string[];
  outcomes: string[];
  actions: string[];
  breakGlass?: boolean;
  count: number;
  /** keyset cursor: events strictly older than (recorded, id) */
  after?: { recorded: Date; id: string };
  withTotal: boolean;
}

const OPS = { ge: '>=', gt: '>', le: '<=', lt: '<' } as const;

export async function searchAuditEvents(db: Db, q: AuditQuery): Promise<{ resources: AuditEvent[]; total?: number; last?: { recorded: Date; id: string } }> {
  const base = () => {
    const b = db('audit_event');
    for (const d of q.dates) b.where('recorded', OPS[d.op], d.at);
    if (q.patients.length) b.whereRaw('entity_refs && ?::text[]', [q.patients]);
    if (q.entities.length) b.whereRaw('entity_refs && ?::text[]', [q.entities]);
    if (q.agents.length) b.whereIn('agent_who', q.agents);
    if (q.types.length) b.whereIn('type_code', q.types);
    if (q.subtypes.length) b.whereIn('subtype_code', q.subtypes);
    if (q.outcomes.length) b.whereIn('outcome', q.outcomes);
    if (q.actions.length) b.whereIn('action', q.actions);
    if (q.breakGlass !== undefined) b.where('break_glass', q.breakGlass);
    return b;
  };
  const page = base().select('id', 'recorded', db.raw('audit_resource(resource) AS resource')).orderBy([{ column: 'recorded', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(q.count + 1);
  if (q.after) page.whereRaw('(recorded, id) < (?, ?::uuid)', [q.after.recorded, q.after.id]);
  const [rows, total] = await Promise.all([
    page as Promise<Array<{ id: string; recorded: Date; resource: AuditEvent }>>,
    q.withTotal ? (base().count<{ count: number }[]>({ count: '*' }) as Promise<{ count: number }[]>).then((r) => Number(r[0]!.count)) : Promise.resolve(undefined),
  ]);
  const more = rows.length > q.count;
  const shown = rows.slice(0, q.count);
  const lastRow = shown[shown.length - 1];
  return { resources: shown.map((r) => r.resource), total, last: more && lastRow ? { recorded: lastRow.recorded, id: lastRow.id } : undefined };
}

export async function readAuditEvent(db: Db, id: string): Promise<AuditEvent | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
  const row = (await db('audit_event').where({ id }).first(db.raw('audit_resource(resource) AS resource'))) as { resource: AuditEvent } | undefined;
  return row?.resource;
}

export async function countAuditEvents(db: Db): Promise<number> {
  const r = (await db('audit_event').count<{ count: number }[]>({ count: '*' })) as { count: number }[];
  return Number(r[0]!.count);
}
