/**
 * Static list of migrations (works the same under tsx and from dist/, no directory scanning).
 * Add new files here in order; never edit an applied migration.
 */
import type { Knex } from 'knex';
import * as m0001 from './20261123_0001_schema.js';
import * as m0002 from './20261123_0002_ingest_storage.js';
import * as m0004 from './20261123_0004_audit_storage.js';
import * as m0005 from './20261123_0005_search_terms.js';
import * as m0006 from './20261123_0006_series_instance_arrays.js';
import * as m0007 from './20261124_0007_docref_body_text.js';
import * as m0008 from './20261124_0008_qido_study_fields.js';
import * as m0009 from './20261124_0009_qido_study_order.js';
import * as m0010 from './20261207_0010_docref_metadata.js';
import * as m0010b from './20261207_0010_kos_form.js';
import * as m0011 from './20261207_0011_imaging_study_per_study.js';
import * as m0013 from './20261207_0013_publish.js';
import * as m0016 from './20261207_0016_modalities_from_sop_classes.js';
import * as m0017 from './20261207_0017_audit_event_json.js';
import * as m0018 from './20261207_0018_publish_fingerprint.js';
import * as m0019 from './20261207_0019_manifest_model_json.js';
import * as m0020 from './20261208_0020_audit_fragment.js';

export const migrations: Record<string, Knex.Migration> = {
  '20261123_0001_schema': m0001,
  '20261123_0002_ingest_storage': m0002,
  '20261123_0004_audit_storage': m0004,
  '20261123_0005_search_terms': m0005,
  '20261123_0006_series_instance_arrays': m0006,
  '20261124_0007_docref_body_text': m0007,
  '20261124_0008_qido_study_fields': m0008,
  '20261124_0009_qido_study_order': m0009,
  '20261207_0010_docref_metadata': m0010,
  '20261207_0010_kos_form': m0010b,
  '20261207_0011_imaging_study_per_study': m0011,
  '20261207_0013_publish': m0013,
  '20261207_0016_modalities_from_sop_classes': m0016,
  '20261207_0017_audit_event_json': m0017,
  '20261207_0018_publish_fingerprint': m0018,
  '20261207_0019_manifest_model_json': m0019,
  '20261208_0020_audit_fragment': m0020,
};
