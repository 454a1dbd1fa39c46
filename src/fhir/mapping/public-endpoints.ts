/**
 * The WADO-RS Endpoint addresses the gateway hands out. A consumer that follows a manifest's
 * Endpoint must reach the images through the gateway (its access decision, manifest scoping,
 * audit), so a MadoWadoEndpoint whose series a configured upstream serves names
 * PUBLIC_BASE_URL/dicomweb (the RAD-107 base of this gateway). Where no upstream can serve it, the
 * archive's address is kept and the Endpoint says so. `publicEndpoints: upstream` keeps the
 * archive's address everywhere. Stored content is never changed: this runs when a resource is
 * served (decisions.md D91). Pure.
 */
import { routeUpstream, type RoutableUpstream } from '../../model/routing.js';
import type { Manifest } from '../../model/manifest.js';
import { EXT } from './codes.js';
import type { Json } from './common.js';

export interface EndpointPolicy {
  publicBaseUrl: string;
  publicEndpoints: 'gateway' | 'upstream';
  upstreams: readonly RoutableUpstream[];
}

const NOT_SERVED = 'WADO-RS at the archive: no upstream of this gateway serves this series, so this address is not reached through the gateway';

export function gatewayDicomweb(p: EndpointPolicy): string {
  return `${p.publicBaseUrl.replace(/\/+$/, '')}/dicomweb`;
}

function isWado(r: Json): boolean {
  return r?.resourceType === 'Endpoint' && r.connectionType?.code === 'dicom-wado-rs';
}

/**
 * The Endpoint as served (a copy when changed). Non-WADO Endpoints (the web viewer) are returned as
 * they are. `annotate`: say in Endpoint.name that an archive address is not served by the gateway
 * (Endpoint resources; inside a stored manifest only addresses change).
 */
export function publicEndpoint(r: Json, p: EndpointPolicy, annotate = true): Json {
  if (!isWado(r) || p.publicEndpoints === 'upstream') return r;
  const gw = gatewayDicomweb(p);
  if (r.address === gw) return r;
  const absent = Array.isArray(r._address?.extension) && r._address.extension.some((e: Json) => e?.url === EXT.dataAbsentReason);
  const location = (r.extension as Json[] | undefined)?.find((e) => e?.url === EXT.retrieveLocationUid)?.valueString;
  const served = routeUpstream(p.upstreams, { retrieveUrl: absent ? undefined : r.address, retrieveLocationUid: location });
  if (!served) return absent || !annotate ? r : { ...r, name: NOT_SERVED };
  const { _address: _a, ...rest } = r;
  return { ...rest, address: gw };
}

/** Every WADO Endpoint of a FHIR document Bundle (or any Bundle) as served; the Bundle is copied only when something changes. */
export function publicEndpointsInBundle(b: Json, p: EndpointPolicy): Json {
  if (!Array.isArray(b?.entry)) return b;
  let changed = false;
  const entry = b.entry.map((e: Json) => {
    const r = e?.resource;
    const n = r ? publicEndpoint(r, p, false) : r;
    if (n === r) return e;
    changed = true;
    return { ...e, resource: n };
  });
  return changed ? { ...b, entry } : b;
}

/** A manifest whose series' Retrieve URLs name the gateway's WADO-RS base where an upstream serves them (for a KOS the gateway writes; MADO puts the service base there, as in MadoWadoEndpoint.address). */
export function manifestWithPublicRetrieveUrls(m: Manifest, p: EndpointPolicy): Manifest {
  if (p.publicEndpoints === 'upstream') return m;
  const gw = gatewayDicomweb(p);
  const n = structuredClone(m);
  for (const e of n.evidence) {
    for (const s of e.series) {
      if (routeUpstream(p.upstreams, { retrieveUrl: s.retrieveUrl, retrieveLocationUid: s.retrieveLocationUid })) s.retrieveUrl = gw;
    }
  }
  return n;
}
