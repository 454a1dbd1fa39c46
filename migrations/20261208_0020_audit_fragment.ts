/**
 * Audit write path, third step (after 0004 and 0017): the parts every AuditEvent repeats are
 * stored once. An ITI-67 event is ~3 KiB of JSON of which ~2.3 KiB are the same in every event of
 * a caller (its client and user agents, the server agent, source, event type and subtypes, meta,
 * entity codings); writing, WAL-logging and sending that text again per request was the larger
 * part of the audit trail's cost per request (decisions.md D79).
 *
 * - audit_fragment: one row per distinct shared part, keyed by a hash of its JSON text (content
 *   addressed, never updated or deleted while events refer to it).
 * - audit_event.resource may hold `{"$f":"<key>"}` where a shared part stood. audit_resource(resource)
 *   gives the AuditEvent back whole (the exact text that was built); events written before this
 *   migration hold no marker and come back unchanged. Ad-hoc SQL reads `audit_resource(resource)`.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE audit_fragment (
      key  text PRIMARY KEY,
      json json NOT NULL
    );
    CREATE FUNCTION audit_resource(r json) RETURNS json LANGUAGE plpgsql STABLE AS $fn$
    DECLARE
      t text := r::text;
      f record;
    BEGIN
      IF position('{"$f":"' in t) = 0 THEN
        RETURN r;
      END IF;
      FOR f IN SELECT a.key, a.json::text AS body FROM audit_fragment a
               WHERE a.key IN (SELECT (regexp_matches(t, '\\{"\\$f":"([A-Za-z0-9_-]+)"\\}', 'g'))[1]) LOOP
        t := replace(t, '{"$f":"' || f.key || '"}', f.body);
      END LOOP;
      RETURN t::json;
    END
    $fn$;
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
