/**
 * Configuration: parsed and validated once at start-up from the environment plus an optional
 * GATEWAY_CONFIG file (JSON or YAML), returned frozen and passed in (never a global).
 * A wrong value throws ConfigError naming the variable; main turns it into one line and exit 2.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

export class ConfigError extends Error {
  constructor(public readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export interface CodingDefault {
  system: string;
  code: string;
  display?: string;
}

/** Deployment defaults for DocumentReference metadata (digest Q15, Q24). */
export interface DocumentDefaults {
  type: CodingDefault;
  category: CodingDefault;
  practiceSetting: CodingDefault;
  facilityType: CodingDefault;
  language: string;
  /** Document title code written into KOS the gateway creates (digest Q6) */
  kosTitle: { value: string; scheme: string; meaning: string };
  /** Timezone used when a manifest gives no Timezone Offset From UTC (digest Q22), "+HHMM" */
  defaultTimezoneOffset: string;
}

export type UpstreamAuth =
  | { type: 'none' }
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | { type: 'oauth2'; tokenUrl: string; clientId: string; clientSecret: string; scope?: string };

export interface UpstreamConfig {
  /** Stable name used in metrics and cache keys */
  name: string;
  /** DICOMweb base URL, no trailing slash */
  url: string;
  auth: UpstreamAuth;
  /** Retrieve Location UIDs (0040,E011) served by this upstream */
  retrieveLocationUids: string[];
  /** Retrieve URL prefixes (0008,1190) that map to this upstream */
  retrieveUrlPrefixes: string[];
  aeTitles: string[];
  /** Max sockets in the undici pool */
  maxConnections: number;
  /** Time allowed for connect + response headers, ms */
  headersTimeoutMs: number;
  /** Max idle time between body chunks, ms */
  bodyTimeoutMs: number;
  /**
   * Assigning authority of this archive's Patient IDs, for manifests the gateway publishes from
   * it when the instances carry no Issuer of Patient ID (PS3.3 C.7.1.1; SUPPL §6.X.2.5.1.1.3)
   */
  patientIdIssuer?: { localNamespace?: string; universalEntityId?: string; universalEntityIdType?: string };
}

/** An MHD Document Recipient that published manifests are forwarded to (ITI-65). */
export interface RecipientConfig {
  name: string;
  /** FHIR base URL of the recipient, no trailing slash */
  url: string;
  auth: UpstreamAuth;
  timeoutMs: number;
  /** Attempts per delivery round before it is left for the background retry */
  retries: number;
  /** First back-off delay; doubles per attempt */
  backoffMs: number;
}

export interface PublishConfig {
  /** Institution Name (0008,0080) of manifests the gateway creates (R+, SUPPL Table 6.X.2.7-1) */
  institutionName?: string;
  recipients: RecipientConfig[];
  watch?: { upstream: string; intervalSec: number; stableAfterSec: number; lookbackDays: number };
}

export interface JwtAuthConfig {
  issuer: string;
  audience: string | string[];
  jwksUrl?: string;
  /** Static public keys (JWK objects) when no JWKS URL is used */
  keys?: Record<string, unknown>[];
  algorithms: string[];
  clockToleranceSec: number;
  /** Claim that carries the user's role(s) */
  roleClaim: string;
  /** Max accepted token length in bytes */
  maxTokenBytes: number;
  /** SMART launch-context claim holding our Patient id (patient compartment) */
  patientClaim: string;
  /**
   * Claim listing the patients a referring clinician has a care relationship with, as
   * "system|value" identifiers (or {system, value} objects); resolved via patient_identifier
   */
  careRelationshipClaim: string;
}

export interface BasicUser {
  username: string;
  /** "scrypt$<saltB64>$<hashB64>" */
  passwordHash: string;
  roles: string[];
  scopes: string[];
}

export interface AuthConfig {
  /** true when any authentication method is configured */
  enabled: boolean;
  jwt?: JwtAuthConfig;
  basic: BasicUser[];
  mtls?: { caFile: string; certFile: string; keyFile: string; roles: Record<string, string[]> };
  /** Scope required for WADO-RS / RAD-107 (digest §5.4) */
  rad107Scope: string;
  breakGlass?: { purposeOfUseClaim: string; value: string; notifyUrl?: string };
}

export interface AuditConfig {
  syslog?: { host: string; port: number; protocol: 'udp' | 'tcp' | 'tls'; appName: string; maxQueue: number };
}

export interface Config {
  host: string;
  port: number;
  publicBaseUrl: string;
  databaseUrl?: string;
  dataDir: string;
  logLevel: string;
  dicomwebUpstreamUrl?: string;
  upstreams: UpstreamConfig[];
  cors: { origins: string[] | '*' };
  limits: {
    /** max request body, bytes (ITI-65, STOW, Binary) */
    maxBodyBytes: number;
    /** max referenced instances per manifest */
    maxReferences: number;
    /** max inflated size of a deflated KOS, bytes */
    maxInflatedBytes: number;
    /** per-request time limit, ms */
    requestTimeoutMs: number;
    /** bounded drain on shutdown, ms */
    shutdownGraceMs: number;
  };
  search: { defaultCount: number; maxCount: number };
  documentDefaults: DocumentDefaults;
  auth: AuthConfig;
  audit: AuditConfig;
  rateLimit?: { requestsPerMinute: number };
  /**
   * Express "trust proxy" setting: which reverse proxies may set X-Forwarded-For, so audit
   * events and rate limits see the client's address. false (default) = trust none.
   */
  trustProxy: boolean | string[];
  /** Content creator: manifests built from an upstream's DICOMweb (POST /fhir/ImagingStudy/$publish, watch mode) */
  publish: PublishConfig;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

type Env = Record<string, string | undefined>;
type Obj = Record<string, unknown>;

function int(name: string, raw: unknown, dflt: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return dflt;
  const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(name, `must be an integer between ${min} and ${max}, got "${String(raw)}"`);
  return n;
}

function url(name: string, raw: unknown, protocols = ['http:', 'https:']): string {
  if (typeof raw !== 'string' || !raw) throw new ConfigError(name, 'must be a URL');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, `is not a valid URL: "${raw}"`);
  }
  if (!protocols.includes(u.protocol)) throw new ConfigError(name, `must use ${protocols.join(' or ')}`);
  return raw.replace(/\/+$/, '');
}

function str(name: string, raw: unknown, dflt?: string): string {
  if (raw === undefined || raw === null || raw === '') {
    if (dflt === undefined) throw new ConfigError(name, 'is required');
    return dflt;
  }
  if (typeof raw !== 'string') throw new ConfigError(name, 'must be a string');
  return raw;
}

function strList(name: string, raw: unknown): string[] {
  if (raw === undefined || raw === null) return [];
  if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw as string[];
  throw new ConfigError(name, 'must be a list of strings');
}

function obj(name: string, raw: unknown): Obj {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(name, 'must be an object');
  return raw as Obj;
}

function coding(name: string, raw: unknown, dflt: CodingDefault): CodingDefault {
  if (raw === undefined) return dflt;
  const o = obj(name, raw);
  return { system: str(`${name}.system`, o.system), code: str(`${name}.code`, o.code), display: o.display === undefined ? undefined : str(`${name}.display`, o.display) };
}

function readConfigFile(file: string): Obj {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError('GATEWAY_CONFIG', `cannot read file "${file}"`);
  }
  try {
    const parsed = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
    return obj('GATEWAY_CONFIG', parsed ?? {});
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('GATEWAY_CONFIG', `"${file}" is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}`);
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function parseServiceAuth(name: string, raw: unknown): UpstreamAuth {
  const a = obj(`${name}.auth`, raw);
  const type = a.type ?? 'none';
  let auth: UpstreamAuth;
  switch (type) {
    case 'none':
      auth = { type: 'none' };
      break;
    case 'basic':
      auth = { type: 'basic', username: str(`${name}.auth.username`, a.username), password: str(`${name}.auth.password`, a.password) };
      break;
    case 'bearer':
      auth = { type: 'bearer', token: str(`${name}.auth.token`, a.token) };
      break;
    case 'oauth2':
      auth = {
        type: 'oauth2',
        tokenUrl: url(`${name}.auth.tokenUrl`, a.tokenUrl),
        clientId: str(`${name}.auth.clientId`, a.clientId),
        clientSecret: str(`${name}.auth.clientSecret`, a.clientSecret),
        scope: a.scope === undefined ? undefined : str(`${name}.auth.scope`, a.scope),
      };
      break;
    default:
      throw new ConfigError(`${name}.auth.type`, 'must be none, basic, bearer or oauth2');
  }
  return auth;
}

function parseIssuer(name: string, raw: unknown): UpstreamConfig['patientIdIssuer'] {
  if (raw === undefined) return undefined;
  if (typeof raw === 'string' && raw) return { localNamespace: raw };
  const o = obj(name, raw);
  const r = {
    localNamespace: o.localNamespace === undefined ? undefined : str(`${name}.localNamespace`, o.localNamespace),
    universalEntityId: o.universalEntityId === undefined ? undefined : str(`${name}.universalEntityId`, o.universalEntityId),
    universalEntityIdType: o.universalEntityIdType === undefined ? undefined : str(`${name}.universalEntityIdType`, o.universalEntityIdType),
  };
  if (!r.localNamespace && !r.universalEntityId) throw new ConfigError(name, 'needs localNamespace or universalEntityId');
  if (r.universalEntityId && !r.universalEntityIdType) r.universalEntityIdType = 'ISO';
  return r;
}

function parseUpstream(name: string, raw: unknown, i: number): UpstreamConfig {
  const o = obj(name, raw);
  const auth = parseServiceAuth(name, o.auth);
  return {
    name: str(`${name}.name`, o.name, `upstream-${i}`),
    url: url(`${name}.url`, o.url),
    auth,
    patientIdIssuer: parseIssuer(`${name}.patientIdIssuer`, o.patientIdIssuer),
    retrieveLocationUids: strList(`${name}.retrieveLocationUids`, o.retrieveLocationUids),
    retrieveUrlPrefixes: strList(`${name}.retrieveUrlPrefixes`, o.retrieveUrlPrefixes).map((p) => p.replace(/\/+$/, '')),
    aeTitles: strList(`${name}.aeTitles`, o.aeTitles),
    maxConnections: int(`${name}.maxConnections`, o.maxConnections, 32, 1, 1024),
    headersTimeoutMs: int(`${name}.headersTimeoutMs`, o.headersTimeoutMs, 30_000, 10, 600_000),
    bodyTimeoutMs: int(`${name}.bodyTimeoutMs`, o.bodyTimeoutMs, 60_000, 10, 600_000),
  };
}

function parseAuth(raw: unknown): AuthConfig {
  const o = obj('auth', raw);
  let jwt: JwtAuthConfig | undefined;
  if (o.jwt !== undefined) {
    const j = obj('auth.jwt', o.jwt);
    const algorithms = strList('auth.jwt.algorithms', j.algorithms ?? ['RS256', 'ES256', 'PS256']);
    if (algorithms.some((a) => a.toLowerCase() === 'none')) throw new ConfigError('auth.jwt.algorithms', '"none" is never allowed');
    if (j.jwksUrl === undefined && j.keys === undefined) throw new ConfigError('auth.jwt', 'needs jwksUrl or keys');
    jwt = {
      issuer: str('auth.jwt.issuer', j.issuer),
      audience: Array.isArray(j.audience) ? strList('auth.jwt.audience', j.audience) : str('auth.jwt.audience', j.audience),
      jwksUrl: j.jwksUrl === undefined ? undefined : url('auth.jwt.jwksUrl', j.jwksUrl),
      keys: j.keys === undefined ? undefined : (Array.isArray(j.keys) ? (j.keys as Record<string, unknown>[]) : (() => { throw new ConfigError('auth.jwt.keys', 'must be a list of JWKs'); })()),
      algorithms,
      clockToleranceSec: int('auth.jwt.clockToleranceSec', j.clockToleranceSec, 60, 0, 300),
      roleClaim: str('auth.jwt.roleClaim', j.roleClaim, 'roles'),
      maxTokenBytes: int('auth.jwt.maxTokenBytes', j.maxTokenBytes, 16_384, 256, 1_048_576),
      patientClaim: str('auth.jwt.patientClaim', j.patientClaim, 'patient'),
      careRelationshipClaim: str('auth.jwt.careRelationshipClaim', j.careRelationshipClaim, 'care_patients'),
    };
  }
  const basic: BasicUser[] = (Array.isArray(o.basic) ? o.basic : o.basic === undefined ? [] : (() => { throw new ConfigError('auth.basic', 'must be a list'); })()).map((u: unknown, i: number) => {
    const b = obj(`auth.basic[${i}]`, u);
    const passwordHash = str(`auth.basic[${i}].passwordHash`, b.passwordHash);
    if (!/^scrypt\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(passwordHash)) throw new ConfigError(`auth.basic[${i}].passwordHash`, 'must be "scrypt$<salt>$<hash>" (see `mado-gateway hash-password`)');
    return { username: str(`auth.basic[${i}].username`, b.username), passwordHash, roles: strList(`auth.basic[${i}].roles`, b.roles), scopes: strList(`auth.basic[${i}].scopes`, b.scopes) };
  });
  let mtls: AuthConfig['mtls'];
  if (o.mtls !== undefined) {
    const m = obj('auth.mtls', o.mtls);
    mtls = { caFile: str('auth.mtls.caFile', m.caFile), certFile: str('auth.mtls.certFile', m.certFile), keyFile: str('auth.mtls.keyFile', m.keyFile), roles: obj('auth.mtls.roles', m.roles) as Record<string, string[]> };
  }
  let breakGlass: AuthConfig['breakGlass'];
  if (o.breakGlass !== undefined) {
    const b = obj('auth.breakGlass', o.breakGlass);
    breakGlass = { purposeOfUseClaim: str('auth.breakGlass.purposeOfUseClaim', b.purposeOfUseClaim, 'purpose_of_use'), value: str('auth.breakGlass.value', b.value, 'ETREAT'), notifyUrl: b.notifyUrl === undefined ? undefined : url('auth.breakGlass.notifyUrl', b.notifyUrl) };
  }
  return { enabled: Boolean(jwt || basic.length || mtls), jwt, basic, mtls, rad107Scope: str('auth.rad107Scope', o.rad107Scope, 'RAD-107'), breakGlass };
}

function parsePublish(raw: unknown, upstreams: UpstreamConfig[]): PublishConfig {
  const o = obj('publish', raw);
  const list = o.recipients === undefined ? [] : Array.isArray(o.recipients) ? o.recipients : (() => { throw new ConfigError('publish.recipients', 'must be a list'); })();
  const recipients = list.map((r: unknown, i: number): RecipientConfig => {
    const n = `publish.recipients[${i}]`;
    const x = obj(n, r);
    return {
      name: str(`${n}.name`, x.name, `recipient-${i}`),
      url: url(`${n}.url`, x.url).replace(/\/fhir$/, '') + '/fhir',
      auth: parseServiceAuth(n, x.auth),
      timeoutMs: int(`${n}.timeoutMs`, x.timeoutMs, 30_000, 100, 600_000),
      retries: int(`${n}.retries`, x.retries, 3, 1, 100),
      backoffMs: int(`${n}.backoffMs`, x.backoffMs, 1000, 10, 600_000),
    };
  });
  let watch: PublishConfig['watch'];
  if (o.watch !== undefined) {
    const w = obj('publish.watch', o.watch);
    const upstream = str('publish.watch.upstream', w.upstream, upstreams.length === 1 ? upstreams[0]!.name : undefined);
    if (!upstreams.some((u) => u.name === upstream)) throw new ConfigError('publish.watch.upstream', `"${upstream}" is not a configured upstream`);
    watch = {
      upstream,
      intervalSec: int('publish.watch.intervalSec', w.intervalSec, 60, 1, 86_400),
      stableAfterSec: int('publish.watch.stableAfterSec', w.stableAfterSec, 120, 0, 86_400),
      lookbackDays: int('publish.watch.lookbackDays', w.lookbackDays, 1, 0, 3650),
    };
  }
  return { institutionName: o.institutionName === undefined ? undefined : str('publish.institutionName', o.institutionName), recipients, watch };
}

/** Parse env (+ GATEWAY_CONFIG file) into a frozen Config. Throws ConfigError. */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const file: Obj = env.GATEWAY_CONFIG ? readConfigFile(env.GATEWAY_CONFIG) : {};
  const host = str('HOST', env.HOST ?? file.host, '127.0.0.1');
  const port = int('PORT', env.PORT ?? file.port, 8080, 0, 65535);
  const logLevel = str('LOG_LEVEL', env.LOG_LEVEL ?? file.logLevel, 'info');
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const hostForUrl = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const publicBaseUrl = url('PUBLIC_BASE_URL', env.PUBLIC_BASE_URL ?? file.publicBaseUrl ?? `http://${hostForUrl === '0.0.0.0' ? '127.0.0.1' : hostForUrl}:${port}`);
  const databaseUrl = env.DATABASE_URL ?? (file.databaseUrl as string | undefined);
  if (databaseUrl !== undefined && databaseUrl !== '') url('DATABASE_URL', databaseUrl, ['postgres:', 'postgresql:']);
  const dataDir = path.resolve(str('DATA_DIR', env.DATA_DIR ?? file.dataDir, './.data'));
  const dicomwebUpstreamUrl = env.DICOMWEB_UPSTREAM_URL || (file.dicomwebUpstreamUrl as string | undefined);
  if (dicomwebUpstreamUrl) url('DICOMWEB_UPSTREAM_URL', dicomwebUpstreamUrl);

  const upstreams = (Array.isArray(file.upstreams) ? file.upstreams : file.upstreams === undefined ? [] : (() => { throw new ConfigError('GATEWAY_CONFIG upstreams', 'must be a list'); })()).map((u: unknown, i: number) => parseUpstream(`upstreams[${i}]`, u, i));
  if (dicomwebUpstreamUrl) upstreams.push(parseUpstream('DICOMWEB_UPSTREAM_URL', { name: 'default', url: dicomwebUpstreamUrl }, upstreams.length));

  const corsRaw = env.CORS_ORIGINS ?? (obj('cors', file.cors).origins as unknown);
  const corsList = corsRaw === undefined ? ['*'] : strList('CORS_ORIGINS', corsRaw);
  const cors = { origins: corsList.includes('*') ? ('*' as const) : corsList };

  const l = obj('limits', file.limits);
  const limits = {
    maxBodyBytes: int('MAX_BODY_BYTES', env.MAX_BODY_BYTES ?? l.maxBodyBytes, 64 * 1024 * 1024, 1024, 2 ** 31 - 1),
    maxReferences: int('MAX_REFERENCES', env.MAX_REFERENCES ?? l.maxReferences, 100_000, 1, 10_000_000),
    maxInflatedBytes: int('MAX_INFLATED_BYTES', env.MAX_INFLATED_BYTES ?? l.maxInflatedBytes, 64 * 1024 * 1024, 1024, 2 ** 31 - 1),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', env.REQUEST_TIMEOUT_MS ?? l.requestTimeoutMs, 120_000, 100, 3_600_000),
    shutdownGraceMs: int('SHUTDOWN_GRACE_MS', env.SHUTDOWN_GRACE_MS ?? l.shutdownGraceMs, 10_000, 0, 600_000),
  };
  const s = obj('search', file.search);
  const search = { defaultCount: int('search.defaultCount', s.defaultCount, 20, 1, 1000), maxCount: int('search.maxCount', s.maxCount, 100, 1, 1000) };

  const d = obj('documentDefaults', file.documentDefaults);
  const title = obj('documentDefaults.kosTitle', d.kosTitle);
  const documentDefaults: DocumentDefaults = {
    type: coding('documentDefaults.type', d.type, { system: 'http://loinc.org', code: '18748-4', display: 'Diagnostic imaging study' }),
    category: coding('documentDefaults.category', d.category, { system: 'http://loinc.org', code: '18748-4', display: 'Diagnostic imaging study' }),
    practiceSetting: coding('documentDefaults.practiceSetting', d.practiceSetting, { system: 'http://snomed.info/sct', code: '394914008', display: 'Radiology' }),
    facilityType: coding('documentDefaults.facilityType', d.facilityType, { system: 'http://snomed.info/sct', code: '79491001', display: 'Hospital-based radiology facility' }),
    language: str('documentDefaults.language', d.language, 'en'),
    kosTitle: { value: str('documentDefaults.kosTitle.value', title.value, 'MADOTEMP001'), scheme: str('documentDefaults.kosTitle.scheme', title.scheme, '99IHE'), meaning: str('documentDefaults.kosTitle.meaning', title.meaning, 'Manifest with Description') },
    defaultTimezoneOffset: str('documentDefaults.defaultTimezoneOffset', d.defaultTimezoneOffset, '+0000'),
  };
  if (!/^[+-]\d{4}$/.test(documentDefaults.defaultTimezoneOffset)) throw new ConfigError('documentDefaults.defaultTimezoneOffset', 'must look like +0100');

  const auth = parseAuth(file.auth);
  const a = obj('audit', file.audit);
  let audit: AuditConfig = {};
  if (a.syslog !== undefined) {
    const sl = obj('audit.syslog', a.syslog);
    const protocol = str('audit.syslog.protocol', sl.protocol, 'udp');
    if (!['udp', 'tcp', 'tls'].includes(protocol)) throw new ConfigError('audit.syslog.protocol', 'must be udp, tcp or tls');
    audit = { syslog: { host: str('audit.syslog.host', sl.host), port: int('audit.syslog.port', sl.port, 514, 1, 65535), protocol: protocol as 'udp' | 'tcp' | 'tls', appName: str('audit.syslog.appName', sl.appName, 'mado-gateway'), maxQueue: int('audit.syslog.maxQueue', sl.maxQueue, 10_000, 1, 1_000_000) } };
  }
  const rl = file.rateLimit === undefined ? undefined : { requestsPerMinute: int('rateLimit.requestsPerMinute', obj('rateLimit', file.rateLimit).requestsPerMinute, 600, 1, 10_000_000) };

  // Secure by default (contract "Configuration"): no unauthenticated non-loopback listener.
  if (!isLoopback(host) && !auth.enabled) {
    throw new ConfigError('HOST', `"${host}" is not a loopback address and no authentication is configured (set auth in GATEWAY_CONFIG, or HOST=127.0.0.1)`);
  }

  const tpRaw = env.TRUST_PROXY ?? (file.trustProxy as unknown);
  const trustProxy = tpRaw === undefined || tpRaw === false || tpRaw === 'false' || tpRaw === '' ? false : tpRaw === true || tpRaw === 'true' ? true : strList('TRUST_PROXY', tpRaw);
  const publish = parsePublish(file.publish, upstreams);
  const config: Config = { publish, trustProxy, host, port, publicBaseUrl, databaseUrl: databaseUrl || undefined, dataDir, logLevel, dicomwebUpstreamUrl: dicomwebUpstreamUrl || undefined, upstreams, cors, limits, search, documentDefaults, auth, audit, rateLimit: rl };
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): Readonly<T> {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}
