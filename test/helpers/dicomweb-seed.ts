/**
 * Direct rows in the manifest index (manifest + imaging_study/series/instance) for DICOMweb tests
 * that need exact control (retrieve locations, status, patient, rejections) without the ingest path.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Db } from '../../src/store/db.js';
import { intArray, textArray } from '../../src/store/manifests.js';

export interface SeedInstance {
  sop: string;
  sopClass?: string;
  number?: number;
  frames?: number;
}

export interface SeedSeries {
  uid: string;
  modality?: string;
  number?: number;
  description?: string;
  retrieveUrl?: string;
  retrieveLocationUid?: string;
  instances: SeedInstance[];
}

export interface SeedManifest {
  study: string;
  status?: 'current' | 'superseded' | 'entered-in-error';
  /** gateway Patient id (patient row created on demand) */
  patientId?: string;
  patientName?: string;
  patientIdValue?: string;
  patientIdIssuer?: string;
  birthDate?: string;
  sex?: string;
  studyDate?: string;
  studyTime?: string;
  description?: string;
  accession?: string;
  accessionIssuer?: string;
  modalities?: string[];
  studyId?: string;
  series: SeedSeries[];
}

let counter = 0;

export function testUid(): string {
  return '2.25.' + BigInt('0x' + randomUUID().replace(/-/g, '')).toString(10);
}

export async function seedManifest(db: Db, m: SeedManifest): Promise<string> {
  const sop = testUid();
  const id = `manifest-test-${++counter}-${createHash('sha1').update(sop).digest('hex').slice(0, 8)}`;
  if (m.patientId) {
    await db.raw(`insert into patient (id, resource) values (?, '{}'::jsonb) on conflict (id) do nothing`, [m.patientId]);
  }
  const model = {
    patient: { id: m.patientIdValue ? { value: m.patientIdValue, issuer: m.patientIdIssuer ? { localNamespace: m.patientIdIssuer } : undefined } : undefined },
    study: { studyInstanceUid: m.study, studyId: m.studyId, accession: m.accession ? { value: m.accession, issuer: m.accessionIssuer ? { localNamespace: m.accessionIssuer } : undefined } : undefined },
    document: { timezoneOffset: '+0100' },
  };
  const nInst = m.series.reduce((a, s) => a + s.instances.length, 0);
  await db.raw(
    `insert into manifest (id, sop_instance_uid, native_format, content, content_type, sha256, size, status, study_instance_uid, patient_id, model, reference_count)
     values (?, ?, 'kos', ?, 'application/dicom', 'x', 1, ?, ?, ?, ?::jsonb, ?)`,
    [id, sop, Buffer.from([0]), m.status ?? 'current', m.study, m.patientId ?? null, JSON.stringify(model), nInst],
  );
  await db.raw(
    `insert into imaging_study (manifest_id, study_instance_uid, patient_id, study_date, study_time, description, accession_number, accession_issuer, modalities,
       patient_name, patient_id_value, patient_id_issuer, patient_birth_date, patient_sex, number_of_series, number_of_instances,
       patient_id_issuer_local, accession_issuer_local, study_id, timezone_offset)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?::text[], ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [id, m.study, m.patientId ?? null, m.studyDate ?? null, m.studyTime ?? null, m.description ?? null, m.accession ?? null, m.accessionIssuer ?? null,
      m.modalities ?? [...new Set(m.series.map((s) => s.modality).filter((x): x is string => !!x))], m.patientName ?? null, m.patientIdValue ?? null, m.patientIdIssuer ?? null,
      m.birthDate ?? null, m.sex ?? null, m.series.length, nInst, m.patientIdIssuer ?? null, m.accessionIssuer ?? null, m.studyId ?? null, model.document.timezoneOffset],
  );
  for (const [i, s] of m.series.entries()) {
    // instances as the series row's parallel arrays (migration 0006)
    await db.raw(
      `insert into imaging_series (manifest_id, study_instance_uid, series_instance_uid, modality, series_number, description, retrieve_url, retrieve_location_uid, number_of_instances,
         sop_instance_uids, sop_class_uids, instance_numbers, frame_counts)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?::text[], ?::text[], ?::int[], ?::int[])`,
      [id, m.study, s.uid, s.modality ?? null, s.number ?? i + 1, s.description ?? null, s.retrieveUrl ?? null, s.retrieveLocationUid ?? null, s.instances.length,
        textArray(s.instances.map((x) => x.sop)), textArray(s.instances.map((x) => x.sopClass ?? '1.2.840.10008.5.1.4.1.1.7')),
        intArray(s.instances.map((x, k) => x.number ?? k + 1)), intArray(s.instances.map((x) => x.frames ?? null))],
    );
  }
  return id;
}

export async function rejectInstance(db: Db, study: string, series: string, sop: string): Promise<void> {
  await db.raw(`insert into rejected_instance (sop_instance_uid, study_instance_uid, series_instance_uid, rejected_by) values (?, ?, ?, ?)`, [sop, study, series, testUid()]);
}
