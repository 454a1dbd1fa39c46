/**
 * Memory settings of the embedded PostgreSQL, sized from the machine's memory (decisions.md D111).
 * PostgreSQL's defaults (shared_buffers 128 MB, work_mem 4 MB, max_wal_size 1 GB) fit a laptop
 * sharing memory with everything; a gateway's database outgrows 128 MB of buffers at a few hundred
 * thousand manifests, and every read then goes to the kernel's page cache (PostgreSQL 18 docs,
 * 19.4.1 "Memory", 19.5.2 "Checkpoints", 19.7.2 "Planner Cost Constants").
 */

/** Values in megabytes, as passed to `postgres -c name=<n>MB`. */
export interface PgMemorySettings {
  shared_buffers: number;
  effective_cache_size: number;
  work_mem: number;
  maintenance_work_mem: number;
  max_wal_size: number;
}

/** The connection limit the embedded cluster starts with (work_mem is per sort/hash per connection). */
export const EMBEDDED_MAX_CONNECTIONS = 200;

const MB = 1024 * 1024;
const clamp = (v: number, lo: number, hi: number) => Math.round(Math.min(hi, Math.max(lo, v)));

/**
 * - shared_buffers: a quarter of memory (the docs' starting point), 128 MB … 8 GB (beyond that the
 *   page cache does the same job without double buffering);
 * - effective_cache_size: half of memory (the gateway process and an image archive may share the
 *   machine), at least 512 MB — a planner hint, nothing is allocated;
 * - work_mem: what is left after shared_buffers, split over max_connections × 2 sorts, 4 … 64 MB;
 * - maintenance_work_mem: 1/16 of memory, 64 MB … 1 GB (index builds, VACUUM);
 * - max_wal_size: 1/8 of memory, 1 … 16 GB (fewer forced checkpoints during bulk ingest).
 */
export function pgMemorySettings(totalBytes: number): PgMemorySettings {
  const total = Math.max(0, totalBytes) / MB;
  const shared = clamp(total / 4, 128, 8192);
  return {
    shared_buffers: shared,
    effective_cache_size: clamp(total / 2, 512, Number.MAX_SAFE_INTEGER),
    work_mem: clamp((total - shared) / (EMBEDDED_MAX_CONNECTIONS * 2), 4, 64),
    maintenance_work_mem: clamp(total / 16, 64, 1024),
    max_wal_size: clamp(total / 8, 1024, 16384),
  };
}

/** `-c name=valueMB` arguments for pg_ctl's -o. */
export function pgSettingArgs(s: PgMemorySettings): string[] {
  return Object.entries(s).map(([k, v]) => `-c ${k}=${v}MB`);
}
