/**
 * Search data read from the stored resource itself rather than from manifest_token
 * (src/store/search-sql.ts reads these columns):
 *
 * - document_reference.entry_uuid — the docref's entryUUID (DocumentReference.identifier with type
 *   entryUUID, system urn:ietf:rfc:3986, value urn:uuid:…, lower case). Each of the two docrefs of
 *   a manifest has its own, so the per-manifest token table cannot hold it; the other identifier
 *   the gateway renders, the uniqueId (masterIdentifier = identifier[0]), stays in manifest_token.
 *   A scalar column with a btree index, so the planner knows one value is one row.
 * - document_reference.author_terms — names of contained Practitioner / Patient / RelatedPerson
 *   resources referenced from DocumentReference.author (author.given / author.family, ITI-67).
 * - submission_set.source_terms — the same for List.source (source.given / source.family, ITI-66).
 *   Name terms per HumanName part ('given' or 'family'):
 *     part '=' raw value           :exact (FHIR 3.1.1.4.7: exact, case- and accent-sensitive)
 *     part ':' prefix              default: every prefix (1..64 characters) of mado_fold(value),
 *                                  plus the whole folded value — a starts-with match on the folded
 *                                  value is one GIN lookup. Longer search values must equal the name.
 *   Arrays may repeat a term (cheaper than de-duplicating per row; GIN stores each key once).
 *   Terms longer than 1000 bytes are left out (GIN entries are limited to ~2.7 kB; an oversized
 *   term would make the insert fail).
 *
 * All are STORED generated columns over `resource`: PostgreSQL derives them on every insert and
 * update of the row (ingest, status changes, bulk loads), so the ingest code is unchanged, no
 * statement is added, and existing rows are back-filled by the ALTER TABLE itself (a table rewrite
 * under ACCESS EXCLUSIVE: expect minutes per million docrefs).
 *
 * The name-term indexes are partial (MADO authors are a Device and an Organization, decisions.md D30, so
 * almost every row is empty and costs no index maintenance); the search SQL repeats the predicate.
 *
 * mado_fold (case- and accent-insensitive FHIR string matching): NFKD, combining marks
 * U+0300–U+036F removed, whitespace trimmed and collapsed, lower-cased under the builtin
 * pg_c_utf8 collation (PostgreSQL 17+; full Unicode simple case mapping whatever the database
 * locale), else ICU und-x-icu, else the database default (C locale: ASCII only). The search SQL
 * folds the query value with the same function, so both sides always agree.
 */
import type { Knex } from 'knex';

async function foldCollation(knex: Knex): Promise<string> {
  for (const c of ['pg_c_utf8', 'und-x-icu']) {
    const r = await knex.raw('SELECT 1 FROM pg_collation WHERE collname = ? LIMIT 1', [c]);
    if (r.rows.length) return ` COLLATE "${c}"`;
  }
  return '';
}

export async function up(knex: Knex): Promise<void> {
  const collate = await foldCollation(knex);
  await knex.raw(`
    CREATE FUNCTION mado_fold(s text) RETURNS text
      LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS $$ SELECT lower(regexp_replace(regexp_replace(btrim(normalize(s, NFKD)), '[\\u0300-\\u036f]', '', 'g'), '\\s+', ' ', 'g')${collate}) $$;

    -- plpgsql with index loops rather than SQL set queries: ~4x cheaper per row (measured: about
    -- 20 µs per typical MADO docref, which has no person author).
    CREATE FUNCTION mado_name_part_terms(part text, raw text) RETURNS text[]
      LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
      AS $$
      DECLARE f text := mado_fold(raw); t text[] := '{}';
      BEGIN
        IF f = '' THEN RETURN t; END IF;
        IF octet_length(raw) <= 1000 THEN t := t || (part || '=' || raw); END IF;
        FOR k IN 1 .. least(length(f), 64) LOOP t := t || (part || ':' || left(f, k)); END LOOP;
        IF length(f) > 64 AND octet_length(f) <= 1000 THEN t := t || (part || ':' || f); END IF;
        RETURN t;
      END $$;

    -- Name terms of the contained Practitioner / Patient / RelatedPerson resources that refs
    -- (a Reference or an array of them) point at with '#id'. Other references do not resolve here.
    CREATE FUNCTION mado_person_name_terms(r jsonb, refs jsonb) RETURNS text[]
      LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
      AS $$
      DECLARE
        contained jsonb := r->'contained';
        ids text[] := '{}'; ref text; x jsonb; hn jsonb; g jsonb; t text[] := '{}';
      BEGIN
        IF jsonb_typeof(contained) IS DISTINCT FROM 'array' THEN RETURN t; END IF;
        IF jsonb_typeof(refs) = 'object' THEN refs := jsonb_build_array(refs);
        ELSIF jsonb_typeof(refs) IS DISTINCT FROM 'array' THEN RETURN t;
        END IF;
        FOR k IN 0 .. jsonb_array_length(refs) - 1 LOOP
          ref := refs->k->>'reference';
          IF left(ref, 1) = '#' THEN ids := ids || substr(ref, 2); END IF;
        END LOOP;
        IF cardinality(ids) = 0 THEN RETURN t; END IF;
        FOR k IN 0 .. jsonb_array_length(contained) - 1 LOOP
          x := contained->k;
          CONTINUE WHEN NOT coalesce(x->>'resourceType' IN ('Practitioner', 'Patient', 'RelatedPerson') AND x->>'id' = ANY(ids), false);
          CONTINUE WHEN jsonb_typeof(x->'name') IS DISTINCT FROM 'array';
          FOR n IN 0 .. jsonb_array_length(x->'name') - 1 LOOP
            hn := x->'name'->n;
            IF jsonb_typeof(hn->'family') = 'string' THEN t := t || mado_name_part_terms('family', hn->>'family'); END IF;
            IF jsonb_typeof(hn->'given') = 'array' THEN
              FOR j IN 0 .. jsonb_array_length(hn->'given') - 1 LOOP
                g := hn->'given'->j;
                IF jsonb_typeof(g) = 'string' THEN t := t || mado_name_part_terms('given', g #>> '{}'); END IF;
              END LOOP;
            END IF;
          END LOOP;
        END LOOP;
        RETURN t;
      END $$;

    -- The jsonpath filter operator is written \\? (knex's escape for a literal question mark).
    ALTER TABLE document_reference
      ADD COLUMN entry_uuid text GENERATED ALWAYS AS (lower(jsonb_path_query_first(resource,
        '$.identifier[*] \\? (@.system == "urn:ietf:rfc:3986" && @.type.coding[*].code == "entryUUID").value') #>> '{}')) STORED,
      ADD COLUMN author_terms text[] NOT NULL GENERATED ALWAYS AS (mado_person_name_terms(resource, resource->'author')) STORED;
    CREATE INDEX docref_entry_uuid ON document_reference (entry_uuid);
    CREATE INDEX docref_author_terms ON document_reference USING gin (author_terms) WHERE cardinality(author_terms) > 0;

    ALTER TABLE submission_set
      ADD COLUMN source_terms text[] NOT NULL GENERATED ALWAYS AS (mado_person_name_terms(resource, resource->'source')) STORED;
    CREATE INDEX submission_set_source_terms ON submission_set USING gin (source_terms) WHERE cardinality(source_terms) > 0;
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
