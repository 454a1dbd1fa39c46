/**
 * What PostgreSQL makes of a compiled search (tests assert index use and plan caching): the SQL
 * comes from the production compiler (src/store/search-sql.ts), the EXPLAIN around it lives here.
 */
import type { Knex } from 'knex';
import type { PatientFilter } from '../../src/model/access.js';
import { withConnection } from '../../src/store/db.js';
import { compileSearch, type SqlPlan } from '../../src/store/search-sql.js';

/**
 * EXPLAIN text of a page query (tests assert index use). `generic`: the plan PostgreSQL caches for
 * the named statement (EXPLAIN (GENERIC_PLAN), parameters unknown) — what runs once rawPrepared's
 * statement has switched to its generic plan.
 */
export async function explainSearch(db: Knex, plan: SqlPlan, pf: PatientFilter, o: { generic?: boolean } = {}): Promise<string> {
  const q = compileSearch(plan, pf);
  const res = o.generic
    ? await db.raw(`EXPLAIN (GENERIC_PLAN) ${db.raw(q.sql, q.bindings as Knex.RawBinding[]).toSQL().toNative().sql.replace(/\?/g, '\\?')}`)
    : await db.raw(`EXPLAIN ${q.sql}`, q.bindings as Knex.RawBinding[]);
  return (res.rows as Array<{ 'QUERY PLAN': string }>).map((r) => r['QUERY PLAN']).join('\n');
}

/**
 * How PostgreSQL plans a page query run as a named statement `runs` times on one connection
 * (pg_prepared_statements counters): tests assert the benchmarked queries move to the cached
 * generic plan instead of being planned again on every request.
 */
export async function searchPlanCacheUse(db: Knex, plan: SqlPlan, pf: PatientFilter, runs: number): Promise<{ generic: number; custom: number }> {
  const q = compileSearch(plan, pf);
  const native = db.raw(q.sql, q.bindings as Knex.RawBinding[]).toSQL().toNative();
  const name = `plan_check_${Math.random().toString(36).slice(2)}`;
  return withConnection(db, async (conn) => {
    for (let i = 0; i < runs; i++) await conn.query({ name, text: native.sql, values: native.bindings as unknown[] });
    const r = await conn.query({ text: 'SELECT generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements WHERE name = $1', values: [name] });
    await conn.query(`DEALLOCATE ${name}`);
    return r.rows[0] as { generic: number; custom: number };
  });
}
