/**
 * Initial schema. Forward-only: `down` is intentionally absent.
 *
 * Shape (see docs/ARCHITECTURE.md "Store"):
 * - manifest            one row per manifest version (= one SOP Instance UID); content immutable.
 * - document_reference  two rows per manifest (KOS and FHIR form, MHD "transforms" pair).
 * - manifest_token      token index shared by DocumentReference and ImagingStudy search.
 * - patient(+_identifier) issuer-aware patient identity.
 * - imaging_study/series/instance  the study/series/instance index of each manifest version
 *                        (QIDO-RS, WADO-RS routing and authorisation, ImagingStudy search).
 * - rejected_instance   IOCM rejections.
 * - submission_set      MHD SubmissionSet Lists (ITI-65 / ITI-66).
 * - endpoint            WADO / viewer Endpoints referenced by manifests.
 * - audit_event         BALP-shaped AuditEvents.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE patient (
      id            text PRIMARY KEY,
      resource      jsonb NOT NULL,
      family        text,            -- lower-cased, for Patient?name / QIDO PatientName
      given         text,
      name_text     text,            -- all name parts, lower-cased, for Patient?name=
      birth_date    date,
      gender        text,
      created_at    timestamptz NOT NULL DEFAULT now(),
      last_updated  timestamptz NOT NULL DEFAULT now()
    );
    -- Patient identity is (system, value): never match on a bare value without its issuer
    -- (product ask 7). system '' = identifier without an issuer.
    CREATE TABLE patient_identifier (
      patient_id  text NOT NULL REFERENCES patient(id),
      system      text NOT NULL DEFAULT '',
      value       text NOT NULL,
      PRIMARY KEY (value, system, patient_id)  -- serves patient.identifier=system|value and |value lookups
    );
    CREATE INDEX patient_identifier_patient ON patient_identifier (patient_id);
    CREATE INDEX patient_name_text ON patient USING btree (name_text text_pattern_ops);

    CREATE TABLE manifest (
      id                 text PRIMARY KEY,          -- deterministic from sop_instance_uid (src/model/ids.ts)
      sop_instance_uid   text NOT NULL UNIQUE,      -- idempotency key of re-submissions
      native_format      text NOT NULL CHECK (native_format IN ('kos', 'fhir')),
      content            bytea NOT NULL,            -- KOS bytes verbatim, or the FHIR JSON as sent (UTF-8)
      content_type       text NOT NULL,
      sha256             text NOT NULL,
      size               integer NOT NULL,
      status             text NOT NULL CHECK (status IN ('current', 'superseded', 'entered-in-error')),
      study_instance_uid text NOT NULL,
      patient_id         text REFERENCES patient(id),
      model              jsonb NOT NULL,            -- parsed manifest model: source of every conversion
      reference_count    integer NOT NULL,
      version_id         integer NOT NULL DEFAULT 1, -- bumped on every status change (ETag)
      submission_set_id  text,
      replaces           text,                      -- manifest id this one superseded
      created_at         timestamptz NOT NULL DEFAULT now(),
      last_updated       timestamptz NOT NULL DEFAULT now()
    );
    -- Exactly one current manifest per study, enforced by the database so concurrent submissions
    -- cannot both win (concurrent submissions of one study).
    CREATE UNIQUE INDEX manifest_one_current_per_study ON manifest (study_instance_uid) WHERE status = 'current';
    CREATE INDEX manifest_study ON manifest (study_instance_uid);
    CREATE INDEX manifest_patient ON manifest (patient_id);

    CREATE TABLE document_reference (
      id            text PRIMARY KEY,
      manifest_id   text NOT NULL REFERENCES manifest(id),
      format        text NOT NULL CHECK (format IN ('kos', 'fhir')),
      status        text NOT NULL,               -- copy of manifest.status (search filter without a join)
      patient_id    text,
      resource      jsonb NOT NULL,              -- rendered DocumentReference, re-rendered on status change
      date          timestamptz NOT NULL,        -- DocumentReference.date (creation of the docref, decisions.md D29)
      creation      timestamptz,                 -- content.attachment.creation
      period_start  timestamptz,                 -- context.period (interval overlap search)
      period_end    timestamptz,
      last_updated  timestamptz NOT NULL DEFAULT now(),
      UNIQUE (manifest_id, format)
    );
    -- Keyset paging order for a patient's documents: (patient, status, last_updated desc, id).
    CREATE INDEX docref_patient_status ON document_reference (patient_id, status, last_updated DESC, id);
    CREATE INDEX docref_last_updated ON document_reference (last_updated DESC, id);
    CREATE INDEX docref_date ON document_reference (date DESC, id);
    CREATE INDEX docref_manifest ON document_reference (manifest_id);

    -- Token index (medplum/HAPI style): one row per (manifest, search code, system, value).
    -- DocumentReference and ImagingStudy searches both resolve to manifests, so they share it.
    -- Values are stored as the FHIR token value; UIDs appear twice (urn:oid: and bare, decisions.md D14).
    CREATE TABLE manifest_token (
      manifest_id  text NOT NULL REFERENCES manifest(id),
      code         text NOT NULL,
      system       text NOT NULL DEFAULT '',
      value        text NOT NULL
    );
    -- Lookup by code+value(+system) → manifests: serves every token parameter (patient.identifier,
    -- study-instance-uid, accession-number, modality, …) as an index-only scan.
    CREATE INDEX manifest_token_lookup ON manifest_token (code, value, system, manifest_id);
    CREATE INDEX manifest_token_manifest ON manifest_token (manifest_id);

    -- Study/series/instance index of each manifest version.
    CREATE TABLE imaging_study (
      manifest_id         text PRIMARY KEY REFERENCES manifest(id),
      study_instance_uid  text NOT NULL,
      patient_id          text,
      study_date          text,      -- DA, for QIDO StudyDate ranges (string compare works on YYYYMMDD)
      study_time          text,
      started             timestamptz,
      description         text,
      accession_number    text,
      accession_issuer    text,
      modalities          text[] NOT NULL DEFAULT '{}',
      patient_name        text,      -- DICOM PN as in the manifest (QIDO wildcard match, case-insensitive)
      patient_id_value    text,
      patient_id_issuer   text,
      patient_birth_date  text,
      patient_sex         text,
      number_of_series    integer NOT NULL,
      number_of_instances integer NOT NULL
    );
    CREATE INDEX imaging_study_uid ON imaging_study (study_instance_uid);
    CREATE INDEX imaging_study_pid ON imaging_study (patient_id_value, patient_id_issuer);
    CREATE INDEX imaging_study_date ON imaging_study (study_date);
    CREATE INDEX imaging_study_accession ON imaging_study (accession_number);

    CREATE TABLE imaging_series (
      manifest_id            text NOT NULL REFERENCES manifest(id),
      study_instance_uid     text NOT NULL,
      series_instance_uid    text NOT NULL,
      modality               text,
      series_number          integer,
      description            text,
      series_date            text,
      series_time            text,
      body_site_code         text,
      retrieve_url           text,
      retrieve_location_uid  text,
      retrieve_ae_title      text,
      number_of_instances    integer NOT NULL,
      PRIMARY KEY (manifest_id, series_instance_uid)
    );
    -- WADO-RS routing: (study, series) → the manifests (and their retrieve location) that hold it.
    CREATE INDEX imaging_series_uid ON imaging_series (study_instance_uid, series_instance_uid);
    CREATE INDEX imaging_series_series ON imaging_series (series_instance_uid);

    CREATE TABLE imaging_instance (
      manifest_id          text NOT NULL REFERENCES manifest(id),
      study_instance_uid   text NOT NULL,
      series_instance_uid  text NOT NULL,
      sop_instance_uid     text NOT NULL,
      sop_class_uid        text NOT NULL,
      instance_number      integer,
      number_of_frames     integer,
      PRIMARY KEY (manifest_id, sop_instance_uid)
    );
    -- WADO-RS instance authorisation: the triple must be referenced by a visible manifest.
    CREATE INDEX imaging_instance_sop ON imaging_instance (sop_instance_uid);
    CREATE INDEX imaging_instance_series ON imaging_instance (study_instance_uid, series_instance_uid);

    CREATE TABLE rejected_instance (
      sop_instance_uid     text PRIMARY KEY,
      study_instance_uid   text NOT NULL,
      series_instance_uid  text NOT NULL,
      rejected_by          text NOT NULL,   -- SOP Instance UID of the IOCM rejection note
      reason               jsonb,           -- document title code of the note (CID 7011)
      rejected_at          timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE submission_set (
      id            text PRIMARY KEY,
      resource      jsonb NOT NULL,
      status        text NOT NULL,
      patient_id    text,
      date          timestamptz,
      created_at    timestamptz NOT NULL DEFAULT now(),
      last_updated  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX submission_set_patient ON submission_set (patient_id, status, last_updated DESC, id);
    CREATE TABLE submission_set_token (
      submission_set_id text NOT NULL REFERENCES submission_set(id),
      code   text NOT NULL,
      system text NOT NULL DEFAULT '',
      value  text NOT NULL
    );
    CREATE INDEX submission_set_token_lookup ON submission_set_token (code, value, system, submission_set_id);

    CREATE TABLE endpoint (
      id                     text PRIMARY KEY,   -- deterministic from (address, retrieve location UID)
      resource               jsonb NOT NULL,
      address                text,
      retrieve_location_uid  text,
      connection_type        text NOT NULL,
      last_updated           timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE manifest_endpoint (
      manifest_id  text NOT NULL REFERENCES manifest(id),
      endpoint_id  text NOT NULL REFERENCES endpoint(id),
      PRIMARY KEY (endpoint_id, manifest_id)
    );

    CREATE TABLE audit_event (
      id           uuid PRIMARY KEY,
      recorded     timestamptz NOT NULL,
      type_code    text NOT NULL,      -- e.g. rest / 110112
      subtype_code text,               -- ITI-67, ITI-68, RAD-107, …
      action       text NOT NULL,
      outcome      text NOT NULL,      -- 0 | 4 | 8 | 12
      agent_who    text,
      patient_ref  text,
      entity_refs  text[] NOT NULL DEFAULT '{}',
      break_glass  boolean NOT NULL DEFAULT false,
      resource     jsonb NOT NULL
    );
    -- AuditEvent search (administrators): by date, patient, agent, entity.
    CREATE INDEX audit_event_recorded ON audit_event (recorded DESC, id);
    CREATE INDEX audit_event_patient ON audit_event (patient_ref, recorded DESC);
    CREATE INDEX audit_event_agent ON audit_event (agent_who, recorded DESC);
    CREATE INDEX audit_event_entity ON audit_event USING gin (entity_refs);
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
