/**
 * THE access decision, one module for FHIR (search, read, ITI-65/67/68, AuditEvent) and DICOMweb
 * (QIDO-RS, WADO-RS / RAD-107, STOW-RS). Mounted in app.ts before the routers and keyed by route
 * (method + path → action), so feature routes need no change: they read `patientFilter(principalOf(req))`
 * and apply it in SQL, which makes a foreign resource a 404 (never a 403) and keeps totals honest.
 *
 * Decision = role allows the action (deployment roles: radiologist reads all imaging; referring reads
 * only its patients; technologist creates/modifies manifests and reads; administrator reads the
 * audit trail) AND the token's scopes allow it (SMART v1/v2, IUA ITI-65…68, RAD-107; scopes.ts).
 * Role-less tokens are governed by scopes alone: system clients (SMART Backend Services, product
 * ask 3) by their system/ scopes, patient apps by patient/ scopes within their launch context.
 * Type-level refusals are 403 and name no resource.
 */
import type { NextFunction, Request, Response } from 'express';
import type { AuditSubtype } from '../audit/types.js';
import type { AuthConfig } from '../config.js';
import { GatewayError } from '../http/errors.js';
import type { PatientResolver } from '../store/principal-store.js';
import { isUiPath, REALM } from './authenticate.js';
import { type PatientFilter, type Principal, type Role } from './principal.js';
import type { AccessRestriction, ScopeQuery } from '../model/scope-restriction.js';
import { scopeGrants, type Interaction } from './scopes.js';

export type ActionKind = 'public' | 'read' | 'search' | 'create' | 'update' | 'retrieve-images' | 'query-images' | 'audit-read' | 'validate';

export interface Action {
  kind: ActionKind;
  /** FHIR type concerned ('ImagingStudy' for DICOMweb) */
  resourceType?: string;
  /** Scope interaction checked (c r u d s) */
  interaction?: Interaction;
  /** Resource types any of whose scopes suffice (default [resourceType]) */
  scopeTypes?: string[];
  /** The IHE transaction (or generic interaction) this route serves, for the audit trail */
  subtype?: AuditSubtype;
}

const READ_KINDS = new Set<ActionKind>(['read', 'search', 'retrieve-images', 'query-images']);

const ROLE_ACTIONS: Record<Role, Set<ActionKind>> = {
  radiologist: new Set(['read', 'search', 'retrieve-images', 'query-images', 'validate']),
  referring: new Set(['read', 'search', 'retrieve-images', 'query-images', 'validate']),
  technologist: new Set(['read', 'search', 'retrieve-images', 'query-images', 'create', 'update', 'validate']),
  // validate: the integrator checking why a manifest was refused (it reads and stores nothing)
  administrator: new Set(['audit-read', 'validate']),
};

const INTERACTION: Record<ActionKind, Interaction> = {
  public: 'r',
  read: 'r',
  search: 's',
  create: 'c',
  update: 'u',
  'retrieve-images': 'r',
  'query-images': 's',
  'audit-read': 's',
  validate: 'r',
};

// ---------------------------------------------------------------------------------------------
// Route → action
// ---------------------------------------------------------------------------------------------

/** Classify a request by method and path (the full path, e.g. /fhir/DocumentReference/1). */
export function classifyRequest(method: string, path: string): Action {
  const m = method === 'HEAD' ? 'GET' : method;
  // Express matches mount paths case-insensitively (/FHIR/AuditEvent reaches the /fhir router),
  // so the prefix is compared the same way; the routers themselves are case-sensitive.
  const lower = path.toLowerCase();
  if (lower === '/fhir' || lower.startsWith('/fhir/')) return classifyFhir(m, path.slice(5));
  if (lower === '/dicomweb' || lower.startsWith('/dicomweb/')) return classifyDicomweb(m, path.slice(9));
  if (path === '/healthz' || path === '/readyz' || path === '/metrics' || path === '/openapi.yaml') return { kind: 'public' };
  if (isUiPath(method, path)) return { kind: 'public', subtype: 'read' };
  // Unknown top-level paths 404; treat as the strictest read so nothing is open by accident.
  return { kind: 'read', resourceType: '*' };
}

function classifyFhir(method: string, rest: string): Action {
  const seg = rest.split('/').filter(Boolean);
  if (seg.length === 0) {
    // POST /fhir: transaction/batch (ITI-65 Provide Document Bundle)
    if (method === 'POST') return { kind: 'create', resourceType: 'Bundle', interaction: 'c', scopeTypes: ['Bundle', 'DocumentReference'], subtype: 'ITI-65' };
    return { kind: 'search', resourceType: '*', interaction: 's', subtype: 'search' };
  }
  const type = seg[0]!;
  if (type === 'metadata' && seg.length === 1 && method === 'GET') return { kind: 'public', subtype: 'metadata' };
  if (type === '.well-known') return { kind: 'public' };
  // FHIR $validate (R4 §3.1.0.6): no data read or stored; any manifest-reading scope suffices.
  if (type === '$validate' && seg.length === 1 && method === 'POST') return { kind: 'validate', resourceType: 'Bundle', interaction: 'r', scopeTypes: ['DocumentReference', 'Bundle', 'Binary'] };
  if (type === '_search') return { kind: 'search', resourceType: '*', interaction: 's', subtype: 'search' };
  const isSearch = (method === 'GET' && seg.length === 1) || (method === 'POST' && seg.length === 2 && seg[1] === '_search');
  if (type === 'AuditEvent') {
    if (method === 'GET' || isSearch) return { kind: 'audit-read', resourceType: 'AuditEvent', interaction: isSearch ? 's' : 'r', subtype: isSearch ? 'search' : 'read' };
    return { kind: 'update', resourceType: 'AuditEvent', interaction: 'u', subtype: 'update' };
  }
  if (isSearch) {
    const subtype: AuditSubtype = type === 'DocumentReference' ? 'ITI-67' : type === 'List' ? 'ITI-66' : 'search';
    return { kind: 'search', resourceType: type, interaction: 's', subtype };
  }
  if (method === 'GET') {
    const subtype: AuditSubtype = type === 'Binary' || type === 'Bundle' ? 'ITI-68' : 'read';
    return { kind: 'read', resourceType: type, interaction: 'r', subtype };
  }
  // ImagingStudy $publish builds and stores a manifest: a create, for whoever may create manifests
  if (method === 'POST' && seg.length === 2 && type === 'ImagingStudy' && seg[1] === '$publish') {
    return { kind: 'create', resourceType: 'ImagingStudy', interaction: 'c', scopeTypes: ['ImagingStudy', 'DocumentReference'], subtype: 'publish' };
  }
  if (method === 'POST' && seg.length === 1) {
    const manifestForm = type === 'Binary' || type === 'Bundle' || type === 'DocumentReference' || type === 'List';
    return { kind: 'create', resourceType: type, interaction: 'c', scopeTypes: manifestForm ? [type, 'DocumentReference'] : [type], subtype: manifestForm ? 'ITI-65' : 'update' };
  }
  // PUT / PATCH / DELETE and POST operations on an instance
  return { kind: 'update', resourceType: type, interaction: method === 'DELETE' ? 'd' : 'u', subtype: 'update' };
}

function classifyDicomweb(method: string, rest: string): Action {
  const seg = rest.split('/').filter(Boolean);
  if (method === 'POST' || method === 'PUT') {
    return { kind: 'create', resourceType: 'ImagingStudy', interaction: 'c', scopeTypes: ['ImagingStudy', 'DocumentReference'], subtype: 'STOW-RS' };
  }
  if (method !== 'GET') return { kind: 'update', resourceType: 'ImagingStudy', interaction: method === 'DELETE' ? 'd' : 'u', subtype: 'update' };
  // QIDO-RS: the path ends in a collection (studies | series | instances) — PS3.18 §10.6.
  const last = seg[seg.length - 1];
  if (last === 'studies' || last === 'series' || last === 'instances') return { kind: 'query-images', resourceType: 'ImagingStudy', interaction: 's', subtype: 'RAD-129' };
  // Anything naming a study/series/instance (metadata, rendered, thumbnail, frames, bulkdata): WADO-RS.
  return { kind: 'retrieve-images', resourceType: 'ImagingStudy', interaction: 'r', subtype: 'RAD-107' };
}

// ---------------------------------------------------------------------------------------------
// The decision
// ---------------------------------------------------------------------------------------------

export interface Decision {
  filter: PatientFilter;
  breakGlass: boolean;
  /** Granular scopes and confidentiality labels: applied in SQL with the patient filter */
  restrict?: AccessRestriction;
}

function forbidden(message: string, code = 'GW_FORBIDDEN', headers?: Record<string, string>): GatewayError {
  return new GatewayError(403, code, message, { headers });
}

export type PolicyConfig = Pick<AuthConfig, 'rad107Scope' | 'breakGlass'> & { confidentiality?: AuthConfig['confidentiality'] };

/**
 * May `p` perform `action`? Throws GatewayError 403 (type-level; names no resource) or returns
 * the patient filter and restrictions to apply in SQL. `p.careRelationshipPatientIds` must be
 * resolved already (the middleware does it).
 */
export function authorize(p: Principal, action: Action, cfg: PolicyConfig = { rad107Scope: 'RAD-107' }): Decision {
  if (action.kind === 'public') return { filter: { all: true }, breakGlass: false };
  if (p.kind === 'loopback') return { filter: { all: true }, breakGlass: false };
  const what = action.resourceType && action.resourceType !== '*' ? ` on ${action.resourceType}` : '';
  const scope = scopeDecision(p, action, cfg, what);
  const limits = roleLimits(p, action, scope.patientOnly, what);

  // Break-glass: a clinical user's emergency purpose of use lifts patient limits and
  // confidentiality for reads, always flagged in the audit trail and notified. Scopes still hold.
  const breakGlass = Boolean(p.breakGlassRequested && cfg.breakGlass && READ_KINDS.has(action.kind) && p.roles.some((r) => r !== 'administrator'));
  const hidden = breakGlass || !READ_KINDS.has(action.kind) ? [] : hiddenConfidentiality(p, cfg.confidentiality);
  const restrict: AccessRestriction | undefined = scope.groups.length || hidden.length ? { ...(scope.groups.length ? { scopeGroups: scope.groups } : {}), ...(hidden.length ? { hiddenConfidentiality: hidden } : {}) } : undefined;
  const narrowed = restrict ? { restrict } : {};
  if (breakGlass || !limits.length) return { filter: { all: true }, breakGlass, ...narrowed };
  let ids = new Set(limits[0]);
  for (const l of limits.slice(1)) ids = new Set(l.filter((x) => ids.has(x)));
  return { filter: { all: false, patientIds: [...ids].sort() }, breakGlass: false, ...narrowed };
}

/** Scopes: mandatory for bearer tokens; for Basic/mTLS service accounts only when configured. */
function scopeDecision(p: Principal, action: Action, cfg: PolicyConfig, what: string): { patientOnly: boolean; groups: ScopeQuery[][] } {
  if (p.authMethod !== 'bearer' && !p.scopes.length) return { patientOnly: false, groups: [] };
  const interaction = action.interaction ?? INTERACTION[action.kind];
  const types = action.scopeTypes ?? [action.resourceType ?? '*'];
  const extra = action.kind === 'retrieve-images' || action.kind === 'query-images' ? [cfg.rad107Scope] : [];
  let granted = false;
  let patientOnly = true;
  let restrictions: ScopeQuery[] | undefined = [];
  for (const t of types) {
    const g = scopeGrants(p.scopes, t, interaction, extra);
    if (!g.granted) continue;
    granted = true;
    patientOnly &&= g.patientOnly;
    restrictions = restrictions && g.restrictions ? [...restrictions, ...g.restrictions] : undefined;
  }
  if (!granted) {
    throw forbidden(`The token's scopes do not allow ${action.kind}${what}`, 'GW_INSUFFICIENT_SCOPE', {
      'WWW-Authenticate': `Bearer realm="${REALM}", error="insufficient_scope"`,
    });
  }
  const groups = restrictions ? [restrictions] : [];
  // ITI-68 hands out a document's content: granular DocumentReference scopes narrow it too.
  if (action.subtype === 'ITI-68') {
    const dr = scopeGrants(p.scopes, 'DocumentReference', 'r');
    if (dr.granted && dr.restrictions) groups.push(dr.restrictions);
  }
  return { patientOnly, groups };
}

/** Role: the action allowed, and the patient lists (to intersect) limiting it. */
function roleLimits(p: Principal, action: Action, scopePatientOnly: boolean, what: string): string[][] {
  const limits: string[][] = [];
  const roleAllowed = p.roles.filter((r) => ROLE_ACTIONS[r]?.has(action.kind));
  if (p.roles.length === 0) {
    // Role-less: a system client (no end user) acts within its scopes; a user-level token
    // without a deployment role may act only through patient/ scopes (patient-facing apps).
    if (p.kind !== 'system' && !scopePatientOnly) throw forbidden(`No role permits ${action.kind}${what}`);
    // The audit trail is for administrators only, whatever the scopes say.
    if (action.kind === 'audit-read') throw forbidden(`No role permits ${action.kind}${what}`);
  } else if (roleAllowed.length === 0) {
    throw forbidden(`Role does not permit ${action.kind}${what}`);
  } else if (roleAllowed.every((r) => r === 'referring')) {
    // Referring clinicians see the patients in their launch context and care relationship.
    limits.push([...(p.patientContext ? [p.patientContext] : []), ...(p.careRelationshipPatientIds ?? [])]);
  }
  if (scopePatientOnly) limits.push(p.patientContext ? [p.patientContext] : []);
  return limits;
}

const DEFAULT_CLEARANCE = { R: ['radiologist'], V: ['radiologist'] };

/** Confidentiality codes (R, V) none of the caller's roles is cleared for (auth.confidentiality; decisions.md D74). */
function hiddenConfidentiality(p: Principal, cfg: AuthConfig['confidentiality'] = DEFAULT_CLEARANCE): string[] {
  return (['R', 'V'] as const).filter((code) => !p.roles.some((r) => cfg[code].includes(r)));
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      /** The classified route and the decision taken (audit reads it) */
      access?: { action: Action; decision?: Decision };
    }
  }
}

export interface PolicyDeps {
  auth: AuthConfig;
  resolver?: PatientResolver;
  /** Break-glass notification hook (src/auth/break-glass.ts) */
  onBreakGlass?: (req: Request, p: Principal, action: Action) => void;
}

/** A SMART launch by business identifier whose patient is not resolved yet. */
const needsLaunchPatient = (p: Principal): p is Principal & Required<Pick<Principal, 'patientIdentifier'>> => Boolean(p.patientIdentifier && !p.patientContext);
/** A referring physician whose care relationship names patients by business identifier. */
const needsCareRelationship = (p: Principal): p is Principal & Required<Pick<Principal, 'careRelationship'>> => Boolean(p.careRelationship?.length && p.roles.includes('referring'));

/** The launch patient and care relationship of `p` need a database lookup before the decision. */
function needsLookup(p: Principal, action: Action, deps: PolicyDeps): boolean {
  if (!deps.resolver || action.kind === 'public') return false;
  return needsLaunchPatient(p) || needsCareRelationship(p);
}

async function resolvePatients(p: Principal, resolver: PatientResolver): Promise<Principal> {
  if (needsLaunchPatient(p)) {
    // SMART launch by business identifier: issuer-aware lookup; ambiguous or unknown → no patient.
    const ids = await resolver.resolve([p.patientIdentifier]);
    p = { ...p, patientContext: ids.length === 1 ? ids[0] : '' };
  }
  if (needsCareRelationship(p)) {
    p = { ...p, careRelationshipPatientIds: await resolver.resolve(p.careRelationship) };
  }
  return p;
}

/** Decide for a resolved principal; the decision goes on res.locals.access and req.principal. */
function decide(req: Request, res: Response, p: Principal, action: Action, deps: PolicyDeps): void {
  const decision = authorize(p, action, deps.auth);
  res.locals.access!.decision = decision;
  if (p.kind !== 'loopback') {
    req.principal = { ...p, patientIds: decision.filter.all ? undefined : decision.filter.patientIds, breakGlass: decision.breakGlass, accessRestriction: decision.restrict };
  }
  if (decision.breakGlass) deps.onBreakGlass?.(req, req.principal!, action);
}

/**
 * Express middleware: classify, decide, and leave the decision on req.principal. Synchronous
 * unless the principal's patients must be looked up first.
 */
export function policyMiddleware(deps: PolicyDeps) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const action = classifyRequest(req.method, req.path);
    res.locals.access = { action };
    const p = req.principal;
    try {
      if (!p) {
        // Only public paths get here without a principal (authentication ran before).
        if (action.kind !== 'public') throw new GatewayError(401, 'GW_UNAUTHORIZED', 'Authentication required', { headers: { 'WWW-Authenticate': `Bearer realm="${REALM}"` } });
        return next();
      }
      if (needsLookup(p, action, deps)) {
        resolvePatients(p, deps.resolver!).then((resolved) => {
          decide(req, res, resolved, action, deps);
          next();
        }).catch(next);
        return;
      }
      decide(req, res, p, action, deps);
    } catch (err) {
      return next(err);
    }
    next();
  };
}
