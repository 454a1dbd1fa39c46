/** Endpoint addresses the gateway hands out (pure): gateway where an upstream serves, archive otherwise, `publicEndpoints: upstream`. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manifestWithPublicRetrieveUrls, publicEndpoint, publicEndpointsInBundle, type EndpointPolicy } from '../../src/fhir/mapping/index.js';
import { routeUpstream } from '../../src/model/routing.js';
import { syntheticManifest } from '../../src/dicom/index.js';

const LOC_EXT = 'https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoRetrieveLocationUIDExtension';
const DAR = 'http://hl7.org/fhir/StructureDefinition/data-absent-reason';
const pacsA = { name: 'pacs-a', url: 'http://pacs-a.internal/dicom-web', retrieveUrlPrefixes: ['https://pacs-a.example.org/dicom-web'], retrieveLocationUids: ['1.2.3.4'] };
const wado = (address: string, loc?: string, absent = false) => ({
  resourceType: 'Endpoint', id: 'e1', status: 'active', connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'dicom-wado-rs' },
  address, ...(absent ? { _address: { extension: [{ url: DAR, valueCode: 'unknown' }] } } : {}), ...(loc ? { extension: [{ url: LOC_EXT, valueString: loc }] } : {}),
});
const policy = (o: Partial<EndpointPolicy> = {}): EndpointPolicy => ({ publicBaseUrl: 'https://gw.example.org/', publicEndpoints: 'gateway', upstreams: [pacsA], ...o });

test('routing: Retrieve URL prefix (path boundary), then Retrieve Location UID, then the default upstream', () => {
  assert.equal(routeUpstream([pacsA], { retrieveUrl: 'https://pacs-a.example.org/dicom-web/studies/1' })?.name, 'pacs-a');
  assert.equal(routeUpstream([pacsA], { retrieveUrl: 'https://pacs-a.example.org/dicom-web-evil' }), undefined);
  assert.equal(routeUpstream([pacsA], { retrieveUrl: 'http://elsewhere', retrieveLocationUid: '1.2.3.4' })?.name, 'pacs-a');
  const dflt = { ...pacsA, name: 'default', retrieveUrlPrefixes: [], retrieveLocationUids: [], url: 'http://orthanc/dicom-web' };
  assert.equal(routeUpstream([pacsA, dflt], { retrieveUrl: 'http://elsewhere' })?.name, 'default');
});

test('an Endpoint an upstream serves names PUBLIC_BASE_URL/dicomweb; data-absent address by location UID too', () => {
  assert.equal(publicEndpoint(wado('https://pacs-a.example.org/dicom-web'), policy()).address, 'https://gw.example.org/dicomweb');
  const byLoc = publicEndpoint(wado('http://notspecified', '1.2.3.4', true), policy());
  assert.equal(byLoc.address, 'https://gw.example.org/dicomweb');
  assert.equal(byLoc._address, undefined);
});

test('no upstream serves it: the archive address is kept and the Endpoint says so (not inside a stored manifest)', () => {
  const r = publicEndpoint(wado('https://other.example.org/wado'), policy());
  assert.equal(r.address, 'https://other.example.org/wado');
  assert.match(r.name, /not reached through the gateway/);
  const b = { resourceType: 'Bundle', entry: [{ resource: wado('https://other.example.org/wado') }] };
  assert.equal(publicEndpointsInBundle(b, policy()), b);
});

test('publicEndpoints: upstream keeps every archive address; viewer Endpoints are never changed', () => {
  const e = wado('https://pacs-a.example.org/dicom-web');
  assert.equal(publicEndpoint(e, policy({ publicEndpoints: 'upstream' })), e);
  const viewer = { resourceType: 'Endpoint', connectionType: { code: 'ihe-iid' }, address: 'https://viewer/x' };
  assert.equal(publicEndpoint(viewer, policy()), viewer);
});

test('a KOS the gateway writes: Retrieve URL = the gateway where an upstream serves the series', () => {
  const m = syntheticManifest({ series: 2, instancesPerSeries: 1, seed: 'pe' });
  m.evidence[0]!.series[0]!.retrieveUrl = 'https://pacs-a.example.org/dicom-web';
  m.evidence[0]!.series[1]!.retrieveUrl = 'https://other.example.org/wado';
  m.evidence[0]!.series[1]!.retrieveLocationUid = undefined;
  const n = manifestWithPublicRetrieveUrls(m, policy());
  assert.equal(n.evidence[0]!.series[0]!.retrieveUrl, 'https://gw.example.org/dicomweb');
  assert.equal(n.evidence[0]!.series[1]!.retrieveUrl, 'https://other.example.org/wado');
  assert.equal(m.evidence[0]!.series[0]!.retrieveUrl, 'https://pacs-a.example.org/dicom-web');
});
