/**
 * Configuration: parsed and validated once at start-up from the environment plus an optional
 * GATEWAY_CONFIG file (JSON or YAML), returned frozen and passed in (never a global).
 * The keys, types and defaults are the schema in ./config/schema.ts; this module reads the file,
 * lays the environment over it, and turns the first problem into a ConfigError naming the
 * variable (an environment variable, or the key's path in the file). main turns it into one line
 * and exit 2. Unknown keys in the file refuse to start, suggesting the nearest known key.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type * as z from 'zod';
import { knownKeys, nearest } from './config/describe.js';
import { configSchema, ENV_KEYS, type ParsedConfig } from './config/schema.js';
import { deepFreeze } from './model/memo.js';

export class ConfigError extends Error {
  constructor(public readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export type UpstreamConfig = Omit<ParsedConfig['upstreams'][number], 'name'> & {
  /** Stable name used in metrics and cache keys */
  name: string;
};
export type UpstreamAuth = UpstreamConfig['auth'];
export type DocumentDefaults = ParsedConfig['documentDefaults'];
export type CodingDefault = DocumentDefaults['type'];
export type AuthConfig = ParsedConfig['auth'] & {
  /** true when any authentication method is configured */
  enabled: boolean;
};
export type JwtAuthConfig = NonNullable<AuthConfig['jwt']>;
export type BasicUser = AuthConfig['basic'][number];
export type IntrospectionConfig = NonNullable<AuthConfig['introspection']>;
export type ConfidentialityConfig = AuthConfig['confidentiality'];
export type AuditConfig = ParsedConfig['audit'];

export type RecipientConfig = Omit<ParsedConfig['publish']['recipients'][number], 'name'> & { name: string };
export type PublishConfig = Omit<ParsedConfig['publish'], 'recipients' | 'watch'> & {
  recipients: RecipientConfig[];
  watch?: Omit<NonNullable<ParsedConfig['publish']['watch']>, 'upstream'> & { upstream: string };
};

export type Config = Omit<ParsedConfig, 'upstreams' | 'auth' | 'publicBaseUrl' | 'cors' | 'publish'> & {
  publicBaseUrl: string;
  publish: PublishConfig;
  upstreams: UpstreamConfig[];
  auth: AuthConfig;
  cors: { origins: string[] | '*' };
};

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

type Env = Record<string, string | undefined>;
type Obj = Record<string, unknown>;

function readConfigFile(file: string): Obj {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError('GATEWAY_CONFIG', `cannot read file "${file}"`);
  }
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch {
    throw new ConfigError('GATEWAY_CONFIG', `"${file}" is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}`);
  }
  parsed ??= {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError('GATEWAY_CONFIG', `"${file}" must hold an object`);
  return parsed as Obj;
}

/** "upstreams[0].auth.type" from ['upstreams', 0, 'auth', 'type'] */
function keyPath(p: ReadonlyArray<PropertyKey>): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? String(s) : `.${String(s)}`)).join('');
}

/** The file's object with each set environment variable laid over its key; returns where each came from. */
function layEnvOver(file: Obj, env: Env): { input: Obj; fromEnv: Map<string, string> } {
  const input = structuredClone(file);
  const fromEnv = new Map<string, string>();
  for (const [variable, key] of Object.entries(ENV_KEYS)) {
    const value = env[variable];
    // An empty DICOMWEB_UPSTREAM_URL leaves the file's value (an empty value of the others means "default").
    if (value === undefined || (value === '' && variable === 'DICOMWEB_UPSTREAM_URL')) continue;
    const steps = key.split('.');
    let o = input;
    for (const step of steps.slice(0, -1)) {
      if (o[step] === undefined || o[step] === null) o[step] = {};
      if (typeof o[step] !== 'object' || Array.isArray(o[step])) break;
      o = o[step] as Obj;
    }
    o[steps.at(-1)!] = value;
    fromEnv.set(key, variable);
  }
  return { input, fromEnv };
}

/** The first schema issue as a ConfigError named by its environment variable or its path in the file. */
function toConfigError(issue: z.core.$ZodIssue, fromEnv: Map<string, string>, file: string | undefined): ConfigError {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const suggestion = nearest(key, knownKeys(configSchema, issue.path));
    const where = file ? ` in "${file}"` : '';
    return new ConfigError(keyPath([...issue.path, key]), `unknown key${where}${suggestion ? `; did you mean "${suggestion}"?` : ''}`);
  }
  const name = keyPath(issue.path);
  const message = issue.code === 'custom' || !issue.message.startsWith('Invalid input') ? issue.message : `invalid value (${issue.message})`;
  return new ConfigError(fromEnv.get(name.replace(/\[\d+\]/g, '')) ?? (name || 'GATEWAY_CONFIG'), message);
}

/** Parse env (+ GATEWAY_CONFIG file) into a frozen Config. Throws ConfigError. */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const file = env.GATEWAY_CONFIG ? readConfigFile(env.GATEWAY_CONFIG) : {};
  const { input, fromEnv } = layEnvOver(file, env);
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues;
    // An unknown key usually explains the other issues (a misspelt required key), so it goes first.
    throw toConfigError(issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!, fromEnv, env.GATEWAY_CONFIG);
  }
  const p = result.data;
  const hostForUrl = p.host.includes(':') && !p.host.startsWith('[') ? `[${p.host}]` : p.host;
  const publicBaseUrl = p.publicBaseUrl ?? derivedBaseUrl(hostForUrl === '0.0.0.0' ? '127.0.0.1' : hostForUrl, p.port);
  const upstreams: UpstreamConfig[] = p.upstreams.map((u, i) => ({ ...u, name: u.name ?? `upstream-${i}`, retrieveUrlPrefixes: u.retrieveUrlPrefixes.map((x) => x.replace(/\/+$/, '')) }));
  if (p.dicomwebUpstreamUrl) {
    const d = configSchema.shape.upstreams.parse([{ name: 'default', url: p.dicomwebUpstreamUrl }])[0]!;
    upstreams.push({ ...d, name: 'default' });
  }
  const auth: AuthConfig = { enabled: Boolean(p.auth.jwt || p.auth.basic.length || p.auth.mtls || p.auth.introspection), ...p.auth };
  // Secure by default: no unauthenticated non-loopback listener.
  if (!isLoopback(p.host) && !auth.enabled) {
    throw new ConfigError('HOST', `"${p.host}" is not a loopback address and no authentication is configured (set auth in GATEWAY_CONFIG, or HOST=127.0.0.1)`);
  }
  const cors = { origins: p.cors.origins.includes('*') ? ('*' as const) : p.cors.origins };
  const publish = publishOf(p.publish, upstreams);
  const config: Config = { ...p, publish, publicBaseUrl, dataDir: path.resolve(p.dataDir), upstreams, auth, cors, databaseUrl: p.databaseUrl || undefined };
  return deepFreeze(config);
}

function publishOf(p: ParsedConfig['publish'], upstreams: UpstreamConfig[]): PublishConfig {
  // a recipient URL is its FHIR base; "…/fhir" may be given or left out
  const recipients = p.recipients.map((r, i) => ({ ...r, name: r.name ?? `recipient-${i}`, url: `${r.url.replace(/\/fhir$/, '')}/fhir` }));
  if (!p.watch) return { ...p, recipients, watch: undefined };
  const upstream = p.watch.upstream ?? (upstreams.length === 1 ? upstreams[0]!.name : upstreams.some((u) => u.name === 'default') ? 'default' : undefined);
  if (!upstream || !upstreams.some((u) => u.name === upstream)) throw new ConfigError('publish.watch.upstream', upstream ? `"${upstream}" is not a configured upstream` : 'name the upstream to watch');
  return { ...p, recipients, watch: { ...p.watch, upstream } };
}

function derivedBaseUrl(host: string, port: number): string {
  const raw = `http://${host}:${port}`;
  try {
    new URL(raw);
  } catch {
    throw new ConfigError('PUBLIC_BASE_URL', `is not a valid URL: "${raw}"`);
  }
  return raw;
}
