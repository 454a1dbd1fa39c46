/**
 * Single-resource reads for the FHIR query API (read interactions and ITI-68). The patient filter
 * is part of each query: a resource of a patient the caller may not see is simply not found.
 */
import type { Knex } from 'knex';
import type { PatientFilter } from '../model/access.js';
import { restrictionSql } from './access-sql.js';

function pfSql(pf: PatientFilter, col: string, b: unknown[]): string {
  if (pf.all) return '';
  b.push(pf.patientIds);
  return ` AND ${col} = ANY(?::text[])`;
}

/** Patient filter plus granular-scope / confidentiality restrictions on the manifest. */
function docSql(pf: PatientFilter, patientCol: string, manifestCol: string, b: unknown[]): string {
  const p = pfSql(pf, patientCol, b);
  const r = restrictionSql(pf.restrict, manifestCol, b);
  return r ? `${p} AND ${r}` : p;
}

export interface DocRefRead {
  id: string;
  resource: Record<string, unknown>;
  patient_id: string | null;
  last_updated: Date;
  version_id: number;
}

export async function readDocumentReference(db: Knex, id: string, pf: PatientFilter): Promise<DocRefRead | undefined> {
  const b: unknown[] = [id];
  const sql = `SELECT d.id, d.resource, d.patient_id, d.last_updated, m.version_id FROM document_reference d JOIN manifest m ON m.id = d.manifest_id WHERE d.id = ?${docSql(pf, 'd.patient_id', 'd.manifest_id', b)}`;
  return (await db.raw(sql, b as Knex.RawBinding[])).rows[0];
}

export interface ManifestRead {
  id: string;
  sop_instance_uid: string;
  native_format: 'kos' | 'fhir';
  content: Buffer;
  content_type: string;
  sha256: string;
  status: 'current' | 'superseded' | 'entered-in-error';
  patient_id: string | null;
  model: unknown;
  version_id: number;
  last_updated: Date;
}

/** The manifest behind a DocumentReference id (ITI-68 and ImagingStudy reads resolve through it). */
export async function readManifestByDocRef(db: Knex, docRefId: string, pf: PatientFilter, withContent: boolean): Promise<ManifestRead | undefined> {
  const b: unknown[] = [docRefId];
  const cols = `m.id, m.sop_instance_uid, m.native_format, m.content_type, m.sha256, m.status, m.patient_id, m.model, m.version_id, m.last_updated${withContent ? ', m.content' : ''}`;
  const sql = `SELECT ${cols} FROM document_reference d JOIN manifest m ON m.id = d.manifest_id WHERE d.id = ?${docSql(pf, 'm.patient_id', 'm.id', b)}`;
  return (await db.raw(sql, b as Knex.RawBinding[])).rows[0];
}

export interface SimpleRead {
  id: string;
  resource: Record<string, unknown>;
  last_updated: Date;
  patient_id?: string | null;
}

export async function readPatient(db: Knex, id: string, pf: PatientFilter): Promise<SimpleRead | undefined> {
  const b: unknown[] = [id];
  const sql = `SELECT id, resource, last_updated, id AS patient_id FROM patient WHERE id = ?${pfSql(pf, 'id', b)}`;
  return (await db.raw(sql, b as Knex.RawBinding[])).rows[0];
}

export async function readList(db: Knex, id: string, pf: PatientFilter): Promise<SimpleRead | undefined> {
  const b: unknown[] = [id];
  const sql = `SELECT id, resource, last_updated, patient_id FROM submission_set WHERE id = ?${pfSql(pf, 'patient_id', b)}`;
  return (await db.raw(sql, b as Knex.RawBinding[])).rows[0];
}

export async function readEndpoint(db: Knex, id: string, pf: PatientFilter): Promise<SimpleRead | undefined> {
  const b: unknown[] = [id];
  let sql = 'SELECT e.id, e.resource, e.last_updated FROM endpoint e WHERE e.id = ?';
  if (!pf.all) {
    b.push(pf.patientIds);
    sql += ' AND EXISTS (SELECT 1 FROM manifest_endpoint me JOIN manifest mm ON mm.id = me.manifest_id WHERE me.endpoint_id = e.id AND mm.patient_id = ANY(?::text[]))';
  }
  return (await db.raw(sql, b as Knex.RawBinding[])).rows[0];
}
