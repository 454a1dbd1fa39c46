/**
 * Index floor of bench/ingest.ts: a bare node:http server in its own process that does, per KOS,
 * only the work ingest cannot skip — SHA-256, our KOS parser (readKos: parse + validate + model),
 * and ONE autocommitted statement (fsync on) that keeps the bytes verbatim plus the instance index
 * (one row per series with its instances as arrays, as migration 0006) and the search tokens
 * (manifestTokens, the rows the FHIR searches use), in tables with the same indexes as ours.
 * No express, auth, audit, FHIR DocumentReference/ImagingStudy/Endpoint/Patient rows, model jsonb,
 * idempotency lookups or study lock. What it reaches under the benchmark's clients bounds what any
 * ingest that keeps the index the FHIR/DICOMweb queries need can reach on this machine.
 * Argv: DATABASE_URL. Prints `listening on URL`.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { readKos } from '../src/dicom/index.js';
import { manifestTokens } from '../src/fhir/mapping/index.js';
import { intArray, textArray } from '../src/store/manifests.js';

const url = process.argv[2]!;
const defaults = loadConfig({ DATABASE_URL: url, PUBLIC_BASE_URL: 'http://bench.test' }).documentDefaults;
const pool = new pg.Pool({ connectionString: url, max: 20 });

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS floor_manifest (id text PRIMARY KEY, sop_instance_uid text NOT NULL UNIQUE, study_instance_uid text NOT NULL,
    patient_id text, sha256 text NOT NULL, content bytea NOT NULL);
  ALTER TABLE floor_manifest ALTER COLUMN content SET STORAGE EXTERNAL;
  CREATE INDEX IF NOT EXISTS floor_manifest_study ON floor_manifest (study_instance_uid);
  CREATE TABLE IF NOT EXISTS floor_series (manifest_id text NOT NULL REFERENCES floor_manifest, study_instance_uid text NOT NULL,
    series_instance_uid text NOT NULL, modality text, sop_instance_uids text[] NOT NULL, sop_class_uids text[] NOT NULL,
    instance_numbers int[] NOT NULL, frame_counts int[] NOT NULL, PRIMARY KEY (manifest_id, series_instance_uid));
  ALTER TABLE floor_series ALTER COLUMN sop_instance_uids SET STORAGE EXTERNAL;
  ALTER TABLE floor_series ALTER COLUMN sop_class_uids SET STORAGE EXTERNAL;
  CREATE INDEX IF NOT EXISTS floor_series_uid ON floor_series (study_instance_uid, series_instance_uid);
  CREATE INDEX IF NOT EXISTS floor_series_series ON floor_series (series_instance_uid);
  CREATE TABLE IF NOT EXISTS floor_token (manifest_id text NOT NULL REFERENCES floor_manifest, code text NOT NULL, system text NOT NULL, value text NOT NULL);
  CREATE INDEX IF NOT EXISTS floor_token_lookup ON floor_token (code, value, system, manifest_id);
  CREATE INDEX IF NOT EXISTS floor_token_manifest ON floor_token (manifest_id);`;

async function store(body: Buffer): Promise<number> {
  const sha = createHash('sha256').update(body).digest('hex');
  const r = readKos(body);
  const m = r.manifest;
  if (r.kind !== 'manifest' || !m || r.issues.some((i) => i.severity === 'error')) return 422;
  const id = sha.slice(0, 32);
  const values: unknown[] = [id, m.document.sopInstanceUid, m.study.studyInstanceUid, m.patient.id?.value ?? null, sha, body];
  const series: string[] = [];
  for (const e of m.evidence) for (const s of e.series) {
    const p = values.length;
    values.push(e.studyInstanceUid, s.uid, s.modality ?? null, textArray(s.instances.map((i) => i.sopInstanceUid)), textArray(s.instances.map((i) => i.sopClassUid)),
      intArray(s.instances.map((i) => i.number ?? null)), intArray(s.instances.map((i) => i.numberOfFrames ?? null)));
    series.push(`($1, $${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}::text[], $${p + 5}::text[], $${p + 6}::int[], $${p + 7}::int[])`);
  }
  const tokens = manifestTokens(m, defaults, []);
  const t = values.length;
  values.push(textArray(tokens.map((x) => x.code)), textArray(tokens.map((x) => x.system)), textArray(tokens.map((x) => x.value)));
  const text = `with m as (insert into floor_manifest (id, sop_instance_uid, study_instance_uid, patient_id, sha256, content) values ($1, $2, $3, $4, $5, $6)),
    s as (insert into floor_series values ${series.join(', ')})
    insert into floor_token select $1, c, s, v from unnest($${t + 1}::text[], $${t + 2}::text[], $${t + 3}::text[]) as x(c, s, v)`;
  await pool.query({ name: `floor${series.length}`, text, values });
  return 201;
}

pool.query(SCHEMA).then(() => {
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      store(Buffer.concat(parts)).then(
        (status) => res.writeHead(status).end(),
        () => res.writeHead(500).end(),
      );
    });
  });
  server.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${(server.address() as { port: number }).port}`));
  process.once('SIGTERM', () => {
    server.close();
    void pool.end().then(() => process.exit(0));
  });
});
