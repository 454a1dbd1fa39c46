/**
 * CapabilityStatement built from the same registry the routes and the search code use, so it
 * states only what is implemented. CONFORMANCE.md is generated from it
 * (scripts/gen-conformance.ts).
 */
import type { CapabilityStatement, CapabilityStatementRestResource, Extension } from '@medplum/fhirtypes';
import { resourceRegistry, type UnsupportedSearchParam } from './registry.js';

/** Parameters of implemented transactions that are not supported: said in the resource's documentation. */
export function unsupportedDoc(ps: UnsupportedSearchParam[] | undefined): string | undefined {
  if (!ps?.length) return undefined;
  const list = ps.map((p) => `\`${p.name}\` (${p.type}${p.definition ? `, ${p.definition}` : ''}): ${p.reason}`).join('; ');
  return `Search parameters not supported (ignored with a warning in the searchset's OperationOutcome; 400 with Prefer: handling=strict): ${list}`;
}

export function buildCapabilityStatement(publicBaseUrl: string, version: string, opts: { authEnabled?: boolean; oauthUris?: Extension } = {}): CapabilityStatement {
  const resources: CapabilityStatementRestResource[] = resourceRegistry.map((r) => ({
    type: r.type as CapabilityStatementRestResource['type'],
    profile: r.profile,
    supportedProfile: r.supportedProfiles,
    interaction: r.interactions.map((code) => ({ code })),
    searchParam: r.searchParams.map((p) => ({ name: p.name, definition: p.definition, type: p.type, documentation: p.documentation })),
    documentation: unsupportedDoc(r.unsupportedSearchParams),
    searchInclude: r.searchInclude,
    searchRevInclude: r.searchRevInclude,
    operation: r.operations?.map((o) => ({ name: o.name, definition: o.definition, documentation: o.documentation })),
    versioning: 'versioned',
    readHistory: false,
    updateCreate: false,
    conditionalCreate: false,
    conditionalUpdate: false,
    conditionalDelete: 'not-supported',
  }));
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-23',
    publisher: 'mado-gateway',
    kind: 'instance',
    software: { name: 'mado-gateway', version },
    implementation: { description: 'mado-gateway: MHD Document Responder/Recipient for IHE MADO manifests', url: `${publicBaseUrl}/fhir` },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'application/fhir+xml'],
    instantiates: [
      'https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentResponder',
      'https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentRecipient',
      'https://profiles.ihe.net/RAD/MADO/CapabilityStatement/IHE.RAD.MADO.DocumentResponder',
    ],
    rest: [
      {
        mode: 'server',
        documentation: 'MHD Document Responder (ITI-66/67/68) and Document Recipient (ITI-65) for IHE MADO imaging manifests.',
        security: opts.authEnabled
          ? {
              extension: opts.oauthUris ? [opts.oauthUris] : undefined,
              cors: true,
              service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
              description: 'OAuth2 bearer tokens (SMART v2 scopes incl. granular ?param=value, IHE IUA scopes; JWT or RFC 7662 introspection) or HTTP Basic service accounts. Discovery: /.well-known/smart-configuration',
            }
          : { cors: true, description: 'No authentication configured: loopback-only deployment' },
        resource: resources,
        interaction: systemInteractions.map((code) => ({ code })),
        ...(systemOperations.length ? { operation: systemOperations.map((o) => ({ ...o })) } : {}),
      },
    ],
  };
}

/** System-level operations (CapabilityStatement.rest.operation); modules add theirs when they register. */
export const systemOperations: Array<{ name: string; definition: string; documentation?: string }> = [];

/** System-level interactions; the ingest module adds 'transaction' when it registers. */
export const systemInteractions: Array<'transaction' | 'batch' | 'search-system' | 'history-system'> = [];
