/**
 * manifest.docref_metadata: what a Document Source said about the document in the
 * DocumentReference it submitted with ITI-65 (securityLabel, category, type, author, authenticator,
 * description, event, facilityType, practiceSetting, period end, sourcePatientInfo, related, extra
 * identifiers). NULL for manifests that arrived without one (STOW-RS, POST Binary/Bundle).
 *
 * Why a column and not only the rendered docref: both DocumentReferences of a manifest are
 * re-rendered from the model on every status change (store/manifests.ts setManifestStatus); the
 * submitted values are overlaid on each rendering, so they survive supersede and entered-in-error.
 * Search rows for them (security-label, category, …) are manifest_token rows written at insert.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE manifest ADD COLUMN docref_metadata jsonb');
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
