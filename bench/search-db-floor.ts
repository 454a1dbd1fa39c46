/**
 * Database floor of bench/search.ts: a bare node:http server in its own process that answers each
 * search with the work no implementation can skip — parse the query (our planner), run the same
 * SQL as the app as a named prepared statement through the same pool (rawPrepared), and send the
 * rows' stored JSON text concatenated into a Bundle. No express, auth, audit, links or rendering.
 * What it reaches under the benchmark's load bounds what the real app can reach on this machine.
 * Env: DATABASE_URL. Prints `listening on URL`.
 */
import http from 'node:http';
import pg from 'pg';
import { planSearch } from '../src/fhir/search/plan.js';
import { parseQueryString } from '../src/fhir/search/parse.js';
import { createDb, rawPrepared } from '../src/store/db.js';
import type { PatientFilter } from '../src/model/access.js';
import { compileSearch, type SearchTable } from '../src/store/search-sql.js';

pg.types.setTypeParser(3802, (v: string) => v); // jsonb stays text: it is spliced, never parsed
const db = createDb({ url: process.env.DATABASE_URL!, poolMax: 20 });
const ALL: PatientFilter = { all: true }; // no patient restriction (the bench app runs without auth, too)

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const type = url.slice('/fhir/'.length, q === -1 ? undefined : q) as SearchTable;
  const plan = planSearch(type, parseQueryString(q === -1 ? '' : url.slice(q + 1)), { strict: false, defaultCount: 20, maxCount: 1000 });
  const sql = compileSearch({ table: type, conds: plan.conds, sort: plan.sort, limit: plan.count }, ALL);
  rawPrepared<Record<string, unknown>>(db, sql.sql, sql.bindings).then(
    ({ rows }) => {
      const entries = rows.map((r) => `{"fullUrl":"${type}/${r.id as string}","resource":${(r.body_text ?? r.model) as string}}`);
      const body = `{"resourceType":"Bundle","type":"searchset","entry":[${entries.join(',')}]}`;
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(body) }).end(body);
    },
    () => res.writeHead(500).end(),
  );
});
server.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${(server.address() as { port: number }).port}`));
process.once('SIGTERM', () => {
  server.close();
  void db.destroy().then(() => process.exit(0));
});
