/**
 * SQL of the content creator (migration 0013): watch-mode study state and high-water mark, and
 * pending forwards to MHD Document Recipients. Work is claimed with FOR UPDATE SKIP LOCKED inside a
 * transaction that stays open while the work runs, so exactly one replica holds a study (or a
 * delivery) at a time and a crash simply releases it.
 */
import type { Db } from './db.js';
import { intArray, textArray, type ManifestRow, type Tx } from './manifests.js';

export interface StudySeen {
  studyInstanceUid: string;
  studyDate?: string;
  instanceCount: number;
}

export async function getWatermark(db: Db, upstream: string): Promise<string | undefined> {
  const r = await db.raw('select study_date_from from publish_watermark where upstream = ?', [upstream]);
  return r.rows[0]?.study_date_from;
}

/** Move the window start forward (never back). */
export async function advanceWatermark(db: Db, upstream: string, from: string): Promise<void> {
  await db.raw(
    `insert into publish_watermark (upstream, study_date_from) values (?, ?)
     on conflict (upstream) do update set study_date_from = greatest(publish_watermark.study_date_from, excluded.study_date_from), updated_at = now()`,
    [upstream, from],
  );
}

/** Record the counts seen by one poll; a changed count restarts the stability clock. */
export async function recordSeen(db: Db, upstream: string, studies: StudySeen[]): Promise<void> {
  if (!studies.length) return;
  await db.raw(
    `insert into publish_study (upstream, study_instance_uid, study_date, instance_count)
     select ?, s.uid, s.d, s.n from unnest(?::text[], ?::text[], ?::int[]) as s(uid, d, n)
     on conflict (upstream, study_instance_uid) do update
       set count_since = case when publish_study.instance_count = excluded.instance_count then publish_study.count_since else now() end,
           instance_count = excluded.instance_count, study_date = excluded.study_date`,
    [upstream, textArray(studies.map((s) => s.studyInstanceUid)), textArray(studies.map((s) => s.studyDate ?? null)), intArray(studies.map((s) => s.instanceCount))],
  );
}

/** Oldest StudyDate among studies still to publish (the watermark may not pass it). */
export async function oldestPending(db: Db, upstream: string): Promise<string | undefined> {
  const r = await db.raw(`select min(study_date) as d from publish_study where upstream = ? and published_count is distinct from instance_count`, [upstream]);
  return r.rows[0]?.d ?? undefined;
}

export interface ClaimedStudy {
  studyInstanceUid: string;
  instanceCount: number;
  attempts: number;
}

/**
 * Claim one study whose count has been stable for `stableAfterSec` and that is not published at
 * that count; run `work` while holding it. `work` returns the count it published, or throws
 * (then the study backs off: 2^attempts seconds, at most 10 minutes). false when nothing is ready.
 */
export async function withReadyStudy(db: Db, upstream: string, stableAfterSec: number, work: (s: ClaimedStudy) => Promise<{ publishedCount: number; manifestId: string }>): Promise<boolean> {
  return db.transaction(async (tx: Tx) => {
    const r = await tx.raw(
      `select study_instance_uid, instance_count, attempts from publish_study
       where upstream = ? and published_count is distinct from instance_count and next_attempt_at <= now()
         and count_since <= now() - make_interval(secs => ?)
       order by next_attempt_at limit 1 for update skip locked`,
      [upstream, stableAfterSec],
    );
    const row = r.rows[0];
    if (!row) return false;
    const claimed = { studyInstanceUid: row.study_instance_uid as string, instanceCount: row.instance_count as number, attempts: row.attempts as number };
    try {
      const done = await work(claimed);
      await tx.raw(
        `update publish_study set published_count = ?, published_at = now(), manifest_id = ?, attempts = 0, last_error = null
         where upstream = ? and study_instance_uid = ?`,
        [done.publishedCount, done.manifestId, upstream, claimed.studyInstanceUid],
      );
    } catch (err) {
      const delay = Math.min(600, 2 ** Math.min(claimed.attempts + 1, 10));
      await tx.raw(
        `update publish_study set attempts = attempts + 1, last_error = ?, next_attempt_at = now() + make_interval(secs => ?)
         where upstream = ? and study_instance_uid = ?`,
        [String((err as Error)?.message ?? err).slice(0, 500), delay, upstream, claimed.studyInstanceUid],
      );
    }
    return true;
  });
}

export interface PublishStudyRow {
  studyInstanceUid: string;
  instanceCount: number;
  publishedCount: number | null;
  manifestId: string | null;
  attempts: number;
  lastError: string | null;
}

export async function publishStudyRows(db: Db, upstream: string): Promise<PublishStudyRow[]> {
  const r = await db.raw(
    `select study_instance_uid as "studyInstanceUid", instance_count as "instanceCount", published_count as "publishedCount",
            manifest_id as "manifestId", attempts, last_error as "lastError"
     from publish_study where upstream = ? order by study_instance_uid`,
    [upstream],
  );
  return r.rows;
}

// ---- fingerprints (migration 0018) --------------------------------------------------------------

export type CurrentManifest = Pick<ManifestRow, 'id' | 'sop_instance_uid' | 'study_instance_uid' | 'patient_id' | 'reference_count' | 'version_id'>;

/** The study's current manifest and the fingerprint it was published with from `upstream` (if it was). */
export async function currentWithFingerprint(db: Db, studyUid: string, upstream: string): Promise<{ manifest: CurrentManifest; fingerprint?: string } | undefined> {
  const r = await db.raw(
    `select m.id, m.sop_instance_uid, m.study_instance_uid, m.patient_id, m.reference_count, m.version_id, f.fingerprint
     from manifest m left join publish_fingerprint f on f.manifest_id = m.id and f.upstream = ?
     where m.study_instance_uid = ? and m.status = 'current'`,
    [upstream, studyUid],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  const { fingerprint, ...manifest } = row;
  return { manifest, fingerprint: fingerprint ?? undefined };
}

export async function recordFingerprint(tx: Tx, manifestId: string, upstream: string, fingerprint: string): Promise<void> {
  await tx.raw(
    `insert into publish_fingerprint (manifest_id, upstream, fingerprint) values (?, ?, ?)
     on conflict (manifest_id) do update set upstream = excluded.upstream, fingerprint = excluded.fingerprint`,
    [manifestId, upstream, fingerprint],
  );
}

// ---- forwarding to recipients -----------------------------------------------------------------

export async function recordDelivery(db: Db, manifestId: string, recipient: string, status: 'pending' | 'delivered', attempts: number, error: string | undefined, retryInSec: number): Promise<void> {
  await db.raw(
    `insert into publish_delivery (manifest_id, recipient, status, attempts, last_error, next_attempt_at, delivered_at)
     values (?, ?, ?, ?, ?, now() + make_interval(secs => ?), case when ? = 'delivered' then now() end)
     on conflict (manifest_id, recipient) do update set status = excluded.status, attempts = publish_delivery.attempts + excluded.attempts,
       last_error = excluded.last_error, next_attempt_at = excluded.next_attempt_at, delivered_at = excluded.delivered_at`,
    [manifestId, recipient, status, attempts, error?.slice(0, 500) ?? null, retryInSec, status],
  );
}

export interface PendingDelivery {
  manifestId: string;
  recipient: string;
  attempts: number;
}

/** Claim one due pending delivery and run `work` (true = delivered) while holding it. */
export async function withDueDelivery(db: Db, work: (d: PendingDelivery) => Promise<{ delivered: boolean; error?: string; attempts: number; retryInSec: number }>): Promise<boolean> {
  return db.transaction(async (tx: Tx) => {
    const r = await tx.raw(
      `select manifest_id, recipient, attempts from publish_delivery where status = 'pending' and next_attempt_at <= now()
       order by next_attempt_at limit 1 for update skip locked`,
    );
    const row = r.rows[0];
    if (!row) return false;
    const d = { manifestId: row.manifest_id as string, recipient: row.recipient as string, attempts: row.attempts as number };
    const res = await work(d);
    await tx.raw(
      `update publish_delivery set status = ?, attempts = attempts + ?, last_error = ?, next_attempt_at = now() + make_interval(secs => ?),
         delivered_at = case when ? then now() end where manifest_id = ? and recipient = ?`,
      [res.delivered ? 'delivered' : 'pending', res.attempts, res.error?.slice(0, 500) ?? null, res.retryInSec, res.delivered, d.manifestId, d.recipient],
    );
    return true;
  });
}

export interface DeliveryRow {
  manifestId: string;
  recipient: string;
  status: 'pending' | 'delivered';
  attempts: number;
  lastError: string | null;
}

export async function deliveryRows(db: Db): Promise<DeliveryRow[]> {
  const r = await db.raw(`select manifest_id as "manifestId", recipient, status, attempts, last_error as "lastError" from publish_delivery order by created_at`);
  return r.rows;
}

/** The stored bytes of a manifest (KOS verbatim) with its content type. */
export async function manifestContent(db: Db, manifestId: string): Promise<{ content: Buffer; contentType: string; sopInstanceUid: string } | undefined> {
  const r = await db.raw('select content, content_type, sop_instance_uid from manifest where id = ?', [manifestId]);
  const row = r.rows[0];
  return row ? { content: row.content as Buffer, contentType: row.content_type as string, sopInstanceUid: row.sop_instance_uid as string } : undefined;
}
