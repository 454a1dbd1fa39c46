/**
 * The OHIF viewer's built distribution for end-to-end tests: `@ohif/app` from the npm registry
 * (pinned version and integrity), only its `dist/`, fetched once with `npm pack` into
 * `node_modules/.cache/ohif-app-<version>/` and served by a small static server with an
 * app-config.js written by the test. Under CI=true a failed download is a failure; elsewhere the
 * caller skips with the reason returned here.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const OHIF_VERSION = '3.13.2';
/** dist.integrity of @ohif/app@3.13.2 in the npm registry */
const OHIF_INTEGRITY = 'sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==';
const CACHE = path.resolve(import.meta.dirname, `../../node_modules/.cache/ohif-app-${OHIF_VERSION}`);

/** The dist directory (downloaded on first use), or { skip } outside CI when it cannot be fetched. */
export async function ohifDist(): Promise<string | { skip: string }> {
  const dist = path.join(CACHE, 'dist');
  if (fs.existsSync(path.join(dist, 'index.html'))) return dist;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ohif-pack-'));
  try {
    const { stdout } = await run('npm', ['pack', `@ohif/app@${OHIF_VERSION}`, '--pack-destination', tmp, '--silent'], { timeout: 300_000, maxBuffer: 1 << 20 });
    const tgz = path.join(tmp, stdout.trim().split('\n').pop()!);
    const digest = 'sha512-' + createHash('sha512').update(fs.readFileSync(tgz)).digest('base64');
    if (digest !== OHIF_INTEGRITY) throw new Error(`@ohif/app@${OHIF_VERSION} tarball integrity ${digest} is not the pinned one`);
    await run('tar', ['xzf', tgz, '-C', tmp, 'package/dist'], { timeout: 300_000 });
    fs.mkdirSync(CACHE, { recursive: true });
    fs.rmSync(dist, { recursive: true, force: true });
    fs.renameSync(path.join(tmp, 'package/dist'), dist); // complete or absent: index.html is checked above
    return dist;
  } catch (err) {
    const why = `cannot fetch @ohif/app@${OHIF_VERSION} from the npm registry: ${(err as Error).message.split('\n')[0]}`;
    if (process.env.CI === 'true') throw new Error(`CI=true and ${why}`);
    return { skip: why };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
};

export interface StaticServer {
  url: string;
  close: () => Promise<void>;
}

/**
 * Serve `dist` on a loopback port: `/app-config.js` is `appConfig`; a path without a file is the
 * single-page app's index.html (its client-side routes: /viewer, /callback, …).
 */
export async function serveOhif(dist: string, appConfig: string): Promise<StaticServer> {
  const root = path.resolve(dist);
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (p === '/app-config.js') {
      res.writeHead(200, { 'content-type': TYPES['.js']!, 'cache-control': 'no-store' });
      res.end(appConfig);
      return;
    }
    let file = path.resolve(root, '.' + p);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(root, 'index.html');
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export interface OhifConfigOptions {
  /** the gateway's DICOMweb base, e.g. http://127.0.0.1:1234/dicomweb */
  dicomweb: string;
  /** OpenID Connect settings (OHIF's `oidc` block) for signing in; none: no authentication */
  oidc?: Record<string, unknown>;
}

/**
 * OHIF's app-config.js with one DICOMweb data source, the gateway: QIDO-RS and WADO-RS at its
 * DICOMweb base, metadata and frames by WADO-RS, includefield supported, no fuzzy matching (the
 * gateway matches PatientName with wildcards, case-insensitively, and no more).
 */
export function ohifAppConfig(o: OhifConfigOptions): string {
  const config = {
    routerBasename: '/',
    extensions: [],
    modes: [],
    showStudyList: true,
    maxNumberOfWebWorkers: 1,
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: false,
    investigationalUseDialog: { option: 'never' },
    defaultDataSourceName: 'gateway',
    dataSources: [
      {
        namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
        sourceName: 'gateway',
        configuration: {
          friendlyName: 'mado-gateway',
          name: 'gateway',
          wadoUriRoot: o.dicomweb,
          qidoRoot: o.dicomweb,
          wadoRoot: o.dicomweb,
          qidoSupportsIncludeField: true,
          supportsReject: false,
          imageRendering: 'wadors',
          thumbnailRendering: 'thumbnail',
          enableStudyLazyLoad: true,
          supportsFuzzyMatching: false,
          supportsWildcard: true,
          staticWado: false,
          singlepart: 'bulkdata,video',
          bulkDataURI: { enabled: true },
        },
      },
    ],
    ...(o.oidc ? { oidc: [o.oidc] } : {}),
  };
  return `window.config = ${JSON.stringify(config, null, 2)};\n`;
}
