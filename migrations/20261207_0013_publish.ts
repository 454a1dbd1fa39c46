/**
 * Content creator state (manifests the gateway builds from an upstream's DICOMweb):
 * - publish_watermark: per upstream, the StudyDate from which watch mode's QIDO-RS window starts
 *   (it only moves forward, and never past a study not yet published), so a restart or a pause
 *   resumes where it stopped.
 * - publish_study: per upstream study, the instance count last seen and since when (a study is
 *   ready once its count has been stable for stableAfterSec) and the count last published. Replicas
 *   claim ready rows with FOR UPDATE SKIP LOCKED, so one replica works a study at a time; the
 *   partial index holds only the rows still to publish, which is what the claim scans.
 * - publish_delivery: forwarding of a published manifest to an MHD Document Recipient (ITI-65) that
 *   failed and is retried with back-off until it succeeds.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE publish_watermark (
      upstream text PRIMARY KEY,
      study_date_from text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE publish_study (
      upstream text NOT NULL,
      study_instance_uid text NOT NULL,
      study_date text,
      instance_count integer NOT NULL,
      count_since timestamptz NOT NULL DEFAULT now(),
      published_count integer,
      published_at timestamptz,
      manifest_id text,
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_error text,
      PRIMARY KEY (upstream, study_instance_uid)
    );
    CREATE INDEX publish_study_pending ON publish_study (upstream, next_attempt_at)
      WHERE published_count IS DISTINCT FROM instance_count;
    CREATE TABLE publish_delivery (
      manifest_id text NOT NULL REFERENCES manifest(id),
      recipient text NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'delivered')),
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_error text,
      delivered_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (manifest_id, recipient)
    );
    CREATE INDEX publish_delivery_pending ON publish_delivery (next_attempt_at) WHERE status = 'pending';
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
