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
import { storedKosModule, stowIngestModule } from './ingest/stow-routes.js';
import { validateOperationModule } from './ingest/validate-operation.js';
import { publishModule } from './publish/routes.js';

export const fhirModules: FhirModule[] = [validateOperationModule, fhirIngestModule, publishModule, mountAuditEvent, ...queryModules];

// storedKosModule after the proxy: it answers only the instance retrievals the proxy hands on
export const dicomwebModules: DicomwebModule[] = [stowIngestModule, dicomwebModule, storedKosModule];
