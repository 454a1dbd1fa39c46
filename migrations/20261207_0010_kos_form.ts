/**
 * manifest.kos_form / document_reference.withheld: a FHIR-native manifest the KOS writer cannot
 * express (even after the mapped values: a UID that is not one, a manifest referencing itself)
 * has no DICOM KOS form, so its MadoDicomKosDocumentReference is not published (MADO: each
 * DocumentReference's attachment must be retrievable in its contentType). The row is kept (ids of a
 * manifest's resources derive from it) and withheld from search and read; the FHIR DocumentReference
 * then carries no `transforms` link. Both columns have constant defaults: no table rewrite.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE manifest ADD COLUMN kos_form boolean NOT NULL DEFAULT true;
    ALTER TABLE document_reference ADD COLUMN withheld boolean NOT NULL DEFAULT false;
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
