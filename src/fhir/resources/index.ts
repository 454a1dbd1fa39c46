/** The FHIR query API: ITI-66/67/68 plus ImagingStudy, Endpoint, Patient. */
import type { FhirModule } from '../routes.js';
import { mountDocumentReference } from './document-reference.js';
import { mountEndpoint } from './endpoint.js';
import { mountImagingStudy } from './imaging-study.js';
import { mountList } from './list.js';
import { mountPatient } from './patient.js';
import { mountRetrieve } from './retrieve.js';

export const queryModules: FhirModule[] = [mountDocumentReference, mountImagingStudy, mountPatient, mountEndpoint, mountList, mountRetrieve];
