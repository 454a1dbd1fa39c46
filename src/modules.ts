/**
 * The feature modules mounted under /fhir and /dicomweb, in order. Each feature adds its mount
 * function here (one line) — the only shared file a feature touches to go live.
 */
import type { DicomwebModule } from './dicomweb/routes.js';
import type { FhirModule } from './fhir/routes.js';
import { mountAuditEvent } from './fhir/resources/audit-event.js';

export const fhirModules: FhirModule[] = [mountAuditEvent];

export const dicomwebModules: DicomwebModule[] = [];
