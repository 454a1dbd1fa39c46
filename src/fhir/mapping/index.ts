/** FHIR mapping of MADO manifests: model ⇄ MadoFhirBundle / MHD DocumentReferences. */
export { storeRendering, issuerToSystem, manifestTokens, type DocRefVersion } from './stored.js';
export { manifestToFhirBundle, manifestEndpoints, manifestImagingStudies, manifestToDocumentReferences, NOT_SPECIFIED, type MappingContext, type DocRefOptions } from './to-fhir.js';
export { fhirToManifest, DEFAULT_KOS_TITLE, type FhirToManifestOptions } from './from-fhir.js';
export { issuesToOperationOutcome } from './outcome.js';
export { toKosWritable } from './kos-writable.js';
export { PROFILE, EXT, SYS, KOS_FORMAT, FHIR_FORMAT } from './codes.js';
export { dicomToFhirDateTime, fhirToDicomDateTime } from './datetime.js';
export { submittedDocRefMetadata, applyDocRefMetadata, docRefMetadataTokens, type DocRefMetadata } from './docref-metadata.js';
export { publicEndpoint, publicEndpointsInBundle, manifestWithPublicRetrieveUrls, gatewayDicomweb, type EndpointPolicy } from './public-endpoints.js';
export { kosToFhirLosses } from './losses.js';
