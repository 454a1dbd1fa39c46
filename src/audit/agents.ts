/**
 * AuditEvent agents (BALP): the client system, the server (this gateway, which is also the audit
 * source: MHD's `val-audit-source` asks agent.who = source.observer) and the user from the token.
 * Direction per DICOM PS3.15 A.5 / BALP: for a read the client receives data (Destination 110152,
 * server Source 110153); for a query or a create the client is the Source and the server the
 * Destination.
 */
import type { AuditEventAgent, Device, Reference } from '@medplum/fhirtypes';
import type { Principal } from '../model/access.js';
import { deepFreeze, memo } from '../model/memo.js';
import { DCM } from './profiles.js';

const USER_AGENT_EXT = 'urn:mado-gateway:StructureDefinition:user-agent';
export const ROLE_SYSTEM = 'urn:mado-gateway:role';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const SOURCE_ROLE = deepFreeze({ system: DCM, code: '110153', display: 'Source Role ID' });
const DESTINATION_ROLE = deepFreeze({ system: DCM, code: '110152', display: 'Destination Role ID' });

export interface AgentInput {
  principal?: Principal;
  clientIp?: string;
  userAgent?: string;
  serverUrl: string;
  breakGlass: boolean;
}

/** The server's identity, also used as AuditEvent.source.observer. */
export function serverWho(serverUrl: string): Reference<Device> {
  return { identifier: { value: serverUrl }, display: 'mado-gateway' };
}

// The server's agent is the same in every event of a direction: built once per server URL, shared.
const serverAgents = new Map<string, AuditEventAgent>();

function serverAgent(serverUrl: string, clientIsDestination: boolean): AuditEventAgent {
  return memo(serverAgents, 100, `${clientIsDestination ? 'S' : 'D'}${serverUrl}`, () =>
    deepFreeze({
      type: { coding: [clientIsDestination ? SOURCE_ROLE : DESTINATION_ROLE] },
      who: serverWho(serverUrl),
      requestor: false,
      network: { address: hostOf(serverUrl), type: '1' as const },
    }));
}

// A caller's agents (client, server, user) are the same in all its requests from one address: built and
// frozen once per (caller, address, user agent, direction, break-glass, server), so their JSON text is too.
// The key holds every principal member the agents show (the policy hands each request a fresh
// Principal object, so the members, not the object, identify the caller). Bounded: cleared when full.
const callerAgents = new Map<string, readonly AuditEventAgent[]>();

export function auditAgents(a: AgentInput, clientIsDestination: boolean): AuditEventAgent[] {
  const p = a.principal;
  // JSON of the members: an unambiguous key whatever characters the values hold
  const key = JSON.stringify(p
    ? [a.serverUrl, clientIsDestination, a.breakGlass, a.clientIp, a.userAgent, p.issuer, p.subject, p.clientId, p.jti, p.roles, p.purposeOfUse, p.authMethod, p.homeCommunityId, p.nationalProviderId]
    : [a.serverUrl, clientIsDestination, a.breakGlass, a.clientIp, a.userAgent]);
  const agents = memo(callerAgents, 1_000, key, () =>
    deepFreeze([clientAgent(a, clientIsDestination), serverAgent(a.serverUrl, clientIsDestination), userAgent(a)]));
  return agents as AuditEventAgent[]; // frozen: shared by the caller's events
}

function clientAgent(a: AgentInput, clientIsDestination: boolean): AuditEventAgent {
  const p = a.principal;
  const client: AuditEventAgent = {
    type: { coding: [clientIsDestination ? DESTINATION_ROLE : SOURCE_ROLE] },
    who: p?.clientId ? { identifier: { system: p.issuer, value: p.clientId } } : { display: a.clientIp ?? 'unknown' },
    requestor: false,
    network: a.clientIp ? { address: a.clientIp, type: isIp(a.clientIp) ? '2' : '1' } : undefined,
  };
  if (a.userAgent) client.extension = [{ url: USER_AGENT_EXT, valueString: a.userAgent.slice(0, 256) }];
  return client;
}

function userAgent(a: AgentInput): AuditEventAgent {
  const p = a.principal;
  const purposeOfUse = [
    ...(a.breakGlass ? [{ coding: [{ system: ACT_REASON, code: 'BTG', display: 'break the glass' }] }] : []),
    ...(p?.purposeOfUse ?? []).map((code) => ({ coding: [{ system: ACT_REASON, code }] })),
  ];
  const ext = [
    ...(p?.authMethod ? [{ url: 'urn:mado-gateway:StructureDefinition:auth-method', valueCode: p.authMethod }] : []),
    // IUA: the organisation and national identifiers the token carried (ITI-71 extensions)
    ...(p?.homeCommunityId ? [{ url: 'urn:mado-gateway:StructureDefinition:home-community-id', valueString: p.homeCommunityId }] : []),
    ...(p?.nationalProviderId ? [{ url: 'urn:mado-gateway:StructureDefinition:national-provider-identifier', valueString: p.nationalProviderId }] : []),
  ];
  return {
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] },
    who: p ? { identifier: { system: p.issuer, value: p.subject } } : { display: 'anonymous' },
    requestor: true,
    role: p?.roles.length ? [{ coding: p.roles.map((r) => ({ system: ROLE_SYSTEM, code: r })) }] : undefined,
    purposeOfUse: purposeOfUse.length ? purposeOfUse : undefined,
    // BALP OAUTHaccessTokenUse: the token is identified by its jti, never copied
    policy: p?.jti ? [`urn:ietf:params:oauth:jti:${p.jti}`] : undefined,
    extension: ext.length ? ext : undefined,
  };
}

function isIp(s: string): boolean {
  return /^[0-9.]+$/.test(s) || s.includes(':');
}

function hostOf(u: string): string {
  try {
    return new URL(u).hostname;
  } catch {
    return u;
  }
}
