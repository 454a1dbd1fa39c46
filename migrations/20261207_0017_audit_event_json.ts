/**
 * Audit write path, second step (after 0004). Every request writes at least one AuditEvent, so
 * PostgreSQL's cost per event is paid on every search, read and retrieve.
 *
 * - audit_event.resource becomes `json` (the text as written, checked to be JSON) instead of
 *   `jsonb`. Building the jsonb binary form was the largest single cost of an audit insert
 *   (measured on the 2-core bench machine, ~3 KiB ITI-67 events in batches of 65: ~20 µs of
 *   PostgreSQL CPU per event of ~65). Nothing queries inside the resource: the AuditEvent search
 *   uses the columns beside it (recorded, agent_who, entity_refs, type/subtype/outcome/action,
 *   break_glass) and returns the resource whole, which `json` hands back without conversion.
 *   Ad-hoc SQL that needs jsonb operators casts (`resource::jsonb`).
 * - toast_tuple_target 8160: a typical event (2.5–4 KiB) stays in the heap row instead of being
 *   moved out to the TOAST table (two more heap tuples and a TOAST index entry per event). Larger
 *   events are still stored out of line, uncompressed (STORAGE EXTERNAL, as 0004 decided).
 * The type change rewrites the table once (ACCESS EXCLUSIVE while it runs).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE audit_event ALTER COLUMN resource TYPE json USING resource::json;
    ALTER TABLE audit_event ALTER COLUMN resource SET STORAGE EXTERNAL;
    ALTER TABLE audit_event SET (toast_tuple_target = 8160);
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
