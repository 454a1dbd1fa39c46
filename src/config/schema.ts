/**
 * The configuration schema: every key of a GATEWAY_CONFIG file, its type, default and meaning, in
 * one place. Objects are strict (an unknown key refuses to start, see ../config.ts), leaves accept
 * the strings the environment gives (numbers and comma-separated lists are coerced).
 *
 * Adding a key: add it to the object it belongs to with one of the leaf helpers below (or a zod
 * schema) and a `.meta({ description })`; its type follows into `Config`. If it also has an
 * environment variable, add it to ENV_KEYS. Then run `npx tsx scripts/gen-config-docs.ts` to
 * regenerate the README table (test/unit/config-docs.test.ts checks it).
 */
import * as z from 'zod';

type Issue = { code: 'custom'; message: string };
const fail = (ctx: { addIssue(i: Issue): void }, message: string) => {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
};

type Ctx = z.core.$RefinementCtx<unknown>;

/**
 * A leaf value converted by `convert` (which reports problems on ctx). The identity preprocess makes
 * an absent key reach `convert` as undefined, so defaults apply.
 */
function leaf<T>(convert: (raw: unknown, ctx: Ctx) => T, meta: Record<string, unknown>) {
  return z.preprocess((v) => v, z.unknown().transform(convert)).meta(meta);
}

/** An optional leaf: absent stays absent (an optional key of Config), blank becomes undefined. */
function optLeaf<T>(convert: (raw: unknown, ctx: Ctx) => T, meta: Record<string, unknown>) {
  return z.preprocess((v) => v, z.unknown().transform((raw, ctx) => (blank(raw) ? undefined : convert(raw, ctx)))).optional().meta(meta);
}

const blank = (raw: unknown) => raw === undefined || raw === null || raw === '';

/** An integer in [min, max]; a string is trimmed and converted (environment values). */
export function int(dflt: number, min: number, max: number, description: string) {
  return leaf((raw, ctx): number => {
    if (raw === undefined || raw === '') return dflt;
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (!Number.isInteger(n) || n < min || n > max) return fail(ctx, `must be an integer between ${min} and ${max}, got "${String(raw)}"`);
    return n;
  }, { type: 'integer', minimum: min, maximum: max, default: dflt, description });
}

/** A string; required when no default is given. */
export function str(description: string, dflt?: string) {
  return leaf((raw, ctx): string => {
    if (blank(raw)) return dflt === undefined ? fail(ctx, 'is required') : dflt;
    if (typeof raw !== 'string') return fail(ctx, 'must be a string');
    return raw;
  }, { type: 'string', ...(dflt === undefined ? {} : { default: dflt }), description });
}

/** An optional string (undefined when absent). */
export function optStr(description: string) {
  return optLeaf((raw, ctx): string => (typeof raw === 'string' ? raw : fail(ctx, 'must be a string')), { type: 'string', description });
}

function checkUrl(raw: unknown, protocols: string[]): string | { error: string } {
  if (typeof raw !== 'string' || !raw) return { error: 'must be a URL' };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { error: `is not a valid URL: "${raw}"` };
  }
  if (!protocols.includes(u.protocol)) return { error: `must use ${protocols.join(' or ')}` };
  return raw.replace(/\/+$/, '');
}

/** A URL with one of the given schemes, trailing slashes removed. */
export function url(description: string, protocols = ['http:', 'https:']) {
  return leaf((raw, ctx): string => {
    const r = checkUrl(raw, protocols);
    return typeof r === 'string' ? r : fail(ctx, r.error);
  }, { type: 'string', format: 'uri', description });
}

/** An optional URL (undefined when absent). */
export function optUrl(description: string, protocols = ['http:', 'https:']) {
  return optLeaf((raw, ctx): string => {
    const r = checkUrl(raw, protocols);
    return typeof r === 'string' ? r : fail(ctx, r.error);
  }, { type: 'string', format: 'uri', description });
}

/** A list of strings, or one comma-separated string. */
export function strList(description: string, dflt: string[] = []) {
  return leaf((raw, ctx): string[] => {
    if (raw === undefined || raw === null) return [...dflt];
    if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
    if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw as string[];
    return fail(ctx, 'must be a list of strings');
  }, { type: 'array', items: { type: 'string' }, default: dflt, description });
}

export function bool(dflt: boolean, description: string) {
  return leaf((raw, ctx): boolean => {
    if (blank(raw)) return dflt;
    if (raw === true || raw === 'true') return true;
    if (raw === false || raw === 'false') return false;
    return fail(ctx, 'must be true or false');
  }, { type: 'boolean', default: dflt, description });
}

export function oneOf<const T extends string>(values: readonly T[], dflt: T, description: string) {
  return leaf((raw, ctx): T => {
    if (blank(raw)) return dflt;
    if (typeof raw !== 'string' || !values.includes(raw as T)) return fail(ctx, `must be one of ${values.join(', ')}`);
    return raw as T;
  }, { type: 'string', enum: [...values], default: dflt, description });
}

/** A strict object that may be absent (then parsed as {} so its defaults apply). */
function section<S extends z.ZodRawShape>(shape: S, description: string) {
  return z.preprocess((v) => (v === undefined || v === null ? {} : v), z.strictObject(shape)).meta({ description });
}

/** A strict object that stays undefined when absent. */
function optional<S extends z.ZodRawShape>(shape: S, description: string) {
  return z.strictObject(shape).optional().meta({ description });
}

const upstreamAuth = z
  .preprocess(
    (v) => (v === undefined || v === null ? { type: 'none' } : typeof v === 'object' && !Array.isArray(v) && (v as { type?: unknown }).type === undefined ? { ...v, type: 'none' } : v),
    z.discriminatedUnion(
      'type',
      [
        z.strictObject({ type: z.literal('none').meta({ description: 'kind of credentials' }) }),
        z.strictObject({ type: z.literal('basic'), username: str('user name'), password: str('password') }),
        z.strictObject({ type: z.literal('bearer'), token: str('static bearer token') }),
        z.strictObject({
          type: z.literal('oauth2'),
          tokenUrl: url('client-credentials token endpoint'),
          clientId: str('client id'),
          clientSecret: str('client secret'),
          scope: optStr('scope requested'),
        }),
      ],
      { error: 'type must be none, basic, bearer or oauth2' },
    ),
  )
  .meta({ description: 'credentials the gateway uses towards this upstream: none | basic | bearer | oauth2 (client credentials)' });

/**
 * Assigning authority of an archive's Patient IDs for manifests the gateway publishes from it when
 * the instances carry no Issuer of Patient ID: a label (Issuer of Patient ID, 0010,0021) or the
 * Issuer of Patient ID Qualifiers (PS3.3 C.7.1.1; MADO wants a Universal Entity ID, SUPPL §6.X.2.5.1.1.3).
 */
const patientIdIssuer = z
  .union([
    z.string().min(1).transform((localNamespace) => ({ localNamespace }) as { localNamespace?: string; universalEntityId?: string; universalEntityIdType?: string }),
    z
      .strictObject({ localNamespace: optStr('Issuer of Patient ID (0010,0021) label'), universalEntityId: optStr('Universal Entity ID (0040,0032), e.g. an OID'), universalEntityIdType: optStr('Universal Entity ID Type (0040,0033), default ISO') })
      .refine((o) => o.localNamespace || o.universalEntityId, 'needs localNamespace or universalEntityId')
      .transform((o) => ({ ...o, ...(o.universalEntityId && !o.universalEntityIdType ? { universalEntityIdType: 'ISO' } : {}) })),
  ])
  .optional()
  .meta({ type: 'string or {localNamespace, universalEntityId, universalEntityIdType}', description: 'assigning authority of this archive\'s Patient IDs, used when publishing manifests from instances without Issuer of Patient ID' });

const upstream = z.strictObject({
  name: optStr('stable name used in metrics and cache keys (default upstream-N)'),
  url: url('DICOMweb base URL'),
  auth: upstreamAuth,
  retrieveLocationUids: strList('Retrieve Location UIDs (0040,E011) served by this upstream'),
  retrieveUrlPrefixes: strList('Retrieve URL (0008,1190) prefixes that map to this upstream'),
  aeTitles: strList('AE titles of this archive'),
  retrieveAeTitles: strList('Retrieve AE Titles (0008,0054) this upstream answers for').optional().meta({ type: 'array', description: 'Retrieve AE Titles (0008,0054) this upstream answers for' }),
  patientIdIssuer: patientIdIssuer,
  maxConnections: int(32, 1, 1024, 'max sockets in the connection pool'),
  headersTimeoutMs: int(30_000, 10, 600_000, 'time allowed for connect + response headers, ms'),
  bodyTimeoutMs: int(60_000, 10, 600_000, 'max idle time between body chunks, ms'),
});

const coding = (dflt: { system: string; code: string; display: string }, description: string) =>
  z
    .preprocess((c) => c ?? dflt, z.strictObject({ system: str('code system URI'), code: str('code'), display: optStr('display text') }))
    .meta({ description: `${description} (default ${dflt.system}|${dflt.code})` });

const IMAGING = { system: 'http://loinc.org', code: '18748-4', display: 'Diagnostic imaging study' };

const documentDefaults = section(
  {
    type: coding(IMAGING, 'DocumentReference.type'),
    category: coding(IMAGING, 'DocumentReference.category'),
    practiceSetting: coding({ system: 'http://snomed.info/sct', code: '394914008', display: 'Radiology' }, 'DocumentReference.context.practiceSetting'),
    facilityType: coding({ system: 'http://snomed.info/sct', code: '79491001', display: 'Hospital-based radiology facility' }, 'DocumentReference.context.facilityType'),
    language: str('DocumentReference.content.attachment.language', 'en'),
    kosTitle: section(
      {
        value: str('code value', 'MADOTEMP001'),
        scheme: str('coding scheme designator', '99IHE'),
        meaning: str('code meaning', 'Manifest with Description'),
      },
      'Document Title (0040,A043) of KOS the gateway writes',
    ),
    defaultTimezoneOffset: leaf((raw, ctx): string => {
        const v = blank(raw) ? '+0000' : raw;
        if (typeof v !== 'string' || !/^[+-]\d{4}$/.test(v)) return fail(ctx, 'must look like +0100');
        return v;
      }, { type: 'string', default: '+0000', description: 'offset used when a manifest has no Timezone Offset From UTC (0008,0201), "+HHMM"' }),
  },
  'deployment defaults for DocumentReference metadata',
);

const jwt = z
  .strictObject({
    issuer: str('expected iss'),
    audience: leaf((raw, ctx): string | string[] => {
        if (Array.isArray(raw)) return raw.every((x) => typeof x === 'string') ? (raw as string[]) : fail(ctx, 'must be a list of strings');
        if (blank(raw)) return fail(ctx, 'is required');
        return typeof raw === 'string' ? raw : fail(ctx, 'must be a string');
      }, { type: 'string or list of strings', description: 'expected aud (one or a list)' }),
    jwksUrl: optUrl('JWKS URL of the identity provider'),
    keys: z.array(z.record(z.string(), z.unknown()), { error: 'must be a list of JWKs' }).optional().meta({ type: 'list of JWK objects', description: 'static public keys (JWK objects) when no JWKS URL is used' }),
    algorithms: strList('accepted signature algorithms', ['RS256', 'ES256', 'PS256']).refine((a) => !a.some((x) => x.toLowerCase() === 'none'), '"none" is never allowed'),
    clockToleranceSec: int(60, 0, 300, 'clock skew tolerated on exp/nbf, s'),
    roleClaim: str("claim that carries the user's role(s)", 'roles'),
    maxTokenBytes: int(16_384, 256, 1_048_576, 'max accepted token length, bytes'),
    patientClaim: str('SMART launch-context claim holding our Patient id', 'patient'),
    patientIdentifierClaim: optStr('claim holding the patient identifier ("system|value") of a patient-context token'),
    careRelationshipClaim: str('claim listing patients ("system|value") the user has a care relationship with', 'care_patients'),
  })
  .refine((j) => j.jwksUrl !== undefined || j.keys !== undefined, { message: 'needs jwksUrl or keys' })
  .optional()
  .meta({ description: 'bearer tokens (OAuth 2.0 / SMART) checked against an issuer' });

const basicUser = z.strictObject({
  username: str('user name'),
  passwordHash: str('"scrypt$<salt>$<hash>" from `mado-gateway hash-password`').refine(
    (h) => /^scrypt\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(h),
    'must be "scrypt$<salt>$<hash>" (see `mado-gateway hash-password`)',
  ),
  roles: strList('roles'),
  scopes: strList('scopes'),
});

const auth = section(
  {
    jwt,
    basic: z.array(basicUser, { error: 'must be a list' }).default([]).meta({ description: 'HTTP Basic users' }),
    mtls: optional(
      {
        caFile: str('CA bundle (PEM) client certificates must chain to'),
        certFile: str('server certificate (PEM)'),
        keyFile: str('server key (PEM)'),
        roles: z.record(z.string(), strList('roles')).default({}).meta({ type: 'map of subject CN to roles', description: 'client certificate subject CN → roles' }),
      },
      'mutual TLS',
    ),
    rad107Scope: str('scope required for WADO-RS (RAD-107)', 'RAD-107'),
    breakGlass: optional(
      {
        purposeOfUseClaim: str('claim carrying the purpose of use', 'purpose_of_use'),
        value: str('purpose-of-use value that means emergency access', 'ETREAT'),
        notifyUrl: optUrl('URL notified (POST) of each break-glass access'),
      },
      'emergency access',
    ),
    introspection: z
      .strictObject({
        url: url('RFC 7662 token introspection endpoint (IUA ITI-102)'),
        clientId: str('client id the gateway authenticates with'),
        clientSecret: optStr('client secret (client_secret_basic)'),
        clientAssertion: z
          .strictObject({
            jwk: z.record(z.string(), z.unknown()).refine((k) => typeof k.kty === 'string' && k.d !== undefined, 'must be a private JWK').meta({ type: 'JWK object', description: 'private key signing the client assertion' }),
            alg: str('signature algorithm of the assertion', 'RS256'),
            audience: optStr('aud of the assertion (default: the introspection URL)'),
          })
          .optional()
          .meta({ description: 'private_key_jwt client authentication (RFC 7523)' }),
        cacheSec: int(60, 0, 60, 'how long an active answer is reused (never past the token exp), s'),
        timeoutMs: int(5_000, 100, 60_000, 'introspection request time limit, ms'),
      })
      .refine((i) => (i.clientSecret === undefined) !== (i.clientAssertion === undefined), { message: 'needs exactly one of clientSecret or clientAssertion' })
      .optional()
      .meta({ description: 'opaque tokens checked by RFC 7662 introspection' }),
    confidentiality: section(
      {
        R: strList('roles cleared for documents labelled R (restricted)', ['radiologist']),
        V: strList('roles cleared for documents labelled V (very restricted)', ['radiologist']),
      },
      'who sees documents with confidentiality security labels (HL7 v3 Confidentiality R, V); break-glass lifts it, audited',
    ),
  },
  'authentication (none configured: loopback only)',
);

const audit = section(
  {
    syslog: optional(
      {
        host: str('syslog collector host'),
        port: int(514, 1, 65535, 'syslog port'),
        protocol: oneOf(['udp', 'tcp', 'tls'] as const, 'udp', 'transport'),
        appName: str('APP-NAME of the syslog header', 'mado-gateway'),
        maxQueue: int(10_000, 1, 1_000_000, 'events buffered while the collector is unreachable'),
      },
      'RFC 5424 syslog export of audit events',
    ),
    storeQuery: oneOf(['full', 'hash'] as const, 'full', 'BALP entity[query].query of search events: full = base64 of the raw request (as the profile asks), hash = base64 of "sha256:<hex>" of it (no query strings kept)'),
  },
  'audit trail (AuditEvent)',
);

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The whole file (and the environment mapped onto it). */
export const configSchema = z.strictObject({
  host: str('listen address', '127.0.0.1'),
  port: int(8080, 0, 65535, 'listen port'),
  publicBaseUrl: optUrl('absolute base of every URL handed out (default http://HOST:PORT)'),
  publicEndpoints: oneOf(['gateway', 'upstream'] as const, 'gateway', 'Endpoint addresses handed out: the gateway (PUBLIC_BASE_URL/dicomweb) or the upstream'),
  databaseUrl: optUrl('postgres://… of an external PostgreSQL (unset: embedded)', ['postgres:', 'postgresql:']),
  dataDir: str('embedded PostgreSQL data and other files kept on disk', './.data'),
  logLevel: oneOf(LOG_LEVELS, 'info', 'pino level'),
  dicomwebUpstreamUrl: optUrl('default upstream DICOMweb base (added as upstream "default")'),
  upstreams: z.array(upstream, { error: 'must be a list' }).default([]).meta({ description: 'DICOMweb archives WADO-RS requests go to' }),
  cors: section({ origins: strList('allowed origins, * for any', ['*']) }, 'CORS'),
  limits: section(
    {
      maxBodyBytes: int(64 * 1024 * 1024, 1024, 2 ** 31 - 1, 'max request body, bytes (ITI-65, STOW, Binary)'),
      maxReferences: int(100_000, 1, 10_000_000, 'max referenced instances per manifest'),
      maxInflatedBytes: int(64 * 1024 * 1024, 1024, 2 ** 31 - 1, 'max inflated size of a deflated KOS, bytes'),
      requestTimeoutMs: int(120_000, 100, 3_600_000, 'per-request time limit, ms'),
      shutdownGraceMs: int(10_000, 0, 600_000, 'bounded drain on shutdown, ms'),
    },
    'input limits',
  ),
  ingest: section(
    {
      groupCommitMax: int(32, 1, 1000, 'most submissions that share one transaction and WAL flush (group commit); 1 = one transaction per submission'),
      groupsInFlight: int(4, 1, 16, 'group-commit transactions running at once (each holds a pool connection)'),
    },
    'ingest transactions',
  ),
  search: section(
    { defaultCount: int(20, 1, 1000, 'page size when _count is absent'), maxCount: int(100, 1, 1000, 'largest _count honoured') },
    'FHIR search paging',
  ),
  documentDefaults,
  auth,
  audit,
  rateLimit: optional({ requestsPerMinute: int(600, 1, 10_000_000, 'requests per minute per client') }, 'per-client rate limit'),
  trustProxy: leaf((raw, ctx): boolean | string[] => {
      if (raw === undefined || raw === false || raw === 'false' || raw === '') return false;
      if (raw === true || raw === 'true') return true;
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw as string[];
      return fail(ctx, 'must be a list of strings');
    }, { type: 'boolean or list of strings', default: false, description: 'reverse proxies trusted for X-Forwarded-For: true, or addresses / loopback / uniquelocal' }),
  publish: section(
    {
      institutionName: optStr('Institution Name (0008,0080) of manifests the gateway creates, ideally an HL7 v2 XON "name^^^^^^^^^OID" (default: the instances\' own)'),
      workers: int(2, 0, 16, 'worker threads that read a study\'s metadata and write its KOS (0: on the main thread)'),
      recipients: z
        .array(
          z.strictObject({
            name: optStr('name used in logs and reports (default recipient-N)'),
            url: url('FHIR base of an MHD Document Recipient'),
            auth: upstreamAuth,
            timeoutMs: int(30_000, 100, 600_000, 'time allowed for one delivery, ms'),
            retries: int(3, 1, 100, 'attempts per delivery round before it is left to the background retry'),
            backoffMs: int(1000, 10, 600_000, 'first back-off between attempts, ms (doubles)'),
          }),
        )
        .default([])
        .meta({ description: 'MHD Document Recipients published manifests are also sent to (ITI-65)' }),
      watch: optional(
        {
          upstream: optStr('upstream to watch (default: the only one, or "default")'),
          intervalSec: int(60, 1, 86_400, 'QIDO-RS poll interval, s'),
          stableAfterSec: int(120, 0, 86_400, 'a study is published once its instance count has not changed for this long, s'),
          lookbackDays: int(1, 0, 3650, 'the StudyDate window reaches this many days back from today (and back to the oldest study not yet published)'),
        },
        'publish the studies stored in an upstream as they arrive',
      ),
    },
    'content creator: manifests built from an upstream archive',
  ),
  ui: section(
    {
      viewerUrl: optStr('viewer URL template opened from the web page; {study} becomes the Study Instance UID, e.g. https://viewer.example.org/viewer?StudyInstanceUIDs={study}'),
      clientId: str('OAuth 2.0 client id the web page signs in with (public client: authorization code + PKCE, redirect URI PUBLIC_BASE_URL/ui/)', 'mado-gateway-ui'),
      scope: str('scopes the web page asks for when signing in', 'openid user/*.rs'),
    },
    'web page (/ui/)',
  ),
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;

/** Environment variables and the key each one sets (they win over the file). */
export const ENV_KEYS: Record<string, string> = {
  HOST: 'host',
  PORT: 'port',
  PUBLIC_BASE_URL: 'publicBaseUrl',
  DATABASE_URL: 'databaseUrl',
  DATA_DIR: 'dataDir',
  LOG_LEVEL: 'logLevel',
  DICOMWEB_UPSTREAM_URL: 'dicomwebUpstreamUrl',
  CORS_ORIGINS: 'cors.origins',
  TRUST_PROXY: 'trustProxy',
  MAX_BODY_BYTES: 'limits.maxBodyBytes',
  MAX_REFERENCES: 'limits.maxReferences',
  MAX_INFLATED_BYTES: 'limits.maxInflatedBytes',
  REQUEST_TIMEOUT_MS: 'limits.requestTimeoutMs',
  SHUTDOWN_GRACE_MS: 'limits.shutdownGraceMs',
  INGEST_GROUP_COMMIT_MAX: 'ingest.groupCommitMax',
  INGEST_GROUPS_IN_FLIGHT: 'ingest.groupsInFlight',
};
