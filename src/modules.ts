/**
 * The feature modules mounted under /fhir and /dicomweb, in order. Each feature adds its mount
 * function here (one line) — the only shared file a feature touches to go live.
 */
import { dicomwebModule } from './dicomweb/index.js';
import type { DicomwebModule } from './dicomweb/routes.js';
import type { FhirModule } from './fhir/routes.js';
import { mountAuditEvent } from './fhir/resources/audit-event.js';
import { queryModules } from './fhir/resources/index.js';
import { fhirIngestModule } from './ingest/fhir-routes.js';
import { stowIngestModule } from './ingest/stow-routes.js';
import { validateOperationModule } from './ingest/validate-operation.js';
import { publishModule } from './publish/routes.js';

export const fhirModules: FhirModule[] = [validateOperationModule, fhirIngestModule, publishModule, mountAuditEvent, ...queryModules];

export const dicomwebModules: DicomwebModule[] = [stowIngestModule, dicomwebModule];
