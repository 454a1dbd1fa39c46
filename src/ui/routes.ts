/**
 * The web page (/ui/): static files built by `npm run build` (scripts/build-ui.mjs → dist/ui/)
 * plus /ui/config.json, what the page needs to know that the APIs do not tell it (sign-in client,
 * viewer URL template). Mounted after the security chain: every page request is classified
 * (public: the files hold no patient data) and audited like any other request. The page reads
 * and writes data only through /fhir and /dicomweb with the signed-in user's token.
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../config.js';
import { GatewayError } from '../http/errors.js';

/** What GET /ui/config.json answers (the page's src/config.ts reads the same shape). */
export interface UiClientConfig {
  /** null: no sign-in (loopback deployment without auth, or no bearer-token auth) */
  auth: { issuer: string; clientId: string; scope: string; resource?: string } | null;
  viewerUrl: string | null;
}

export function uiClientConfig(config: Readonly<Config>): UiClientConfig {
  const jwt = config.auth.jwt;
  const aud = jwt ? (Array.isArray(jwt.audience) ? jwt.audience[0] : jwt.audience) : undefined;
  return {
    // RFC 8707 resource indicator: the page asks for a token whose audience is this gateway.
    auth: jwt ? { issuer: jwt.issuer, clientId: config.ui.clientId, scope: config.ui.scope, ...(aud && /^https?:\/\//.test(aud) ? { resource: aud } : {}) } : null,
    viewerUrl: config.ui.viewerUrl ?? null,
  };
}

function contentSecurityPolicy(config: Readonly<Config>): string {
  let idp = '';
  try {
    if (config.auth.jwt) idp = ` ${new URL(config.auth.jwt.issuer).origin}`;
  } catch {
    /* issuer that is not a URL: no sign-in possible anyway */
  }
  // Thumbnails are fetched with the token and shown as blob: URLs; nothing comes from elsewhere.
  return `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'${idp}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'`;
}

export function createUiRouter(config: Readonly<Config>, dir: string): Router {
  const router = Router({ caseSensitive: true, strict: true });
  const csp = contentSecurityPolicy(config);
  const clientConfig = JSON.stringify(uiClientConfig(config));
  router.get('/', (_req, res) => res.redirect(302, '/ui/'));
  router.get('/ui', (req, res) => {
    const q = req.originalUrl.indexOf('?');
    res.redirect(302, `/ui/${q >= 0 ? req.originalUrl.slice(q) : ''}`);
  });
  router.use('/ui', (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    res.setHeader('Content-Security-Policy', csp);
    if (!fs.existsSync(path.join(dir, 'index.html'))) {
      throw new GatewayError(503, 'GW_UI_NOT_BUILT', 'The web page has not been built; run `npm run build`');
    }
    next();
  });
  router.get('/ui/config.json', (_req, res) => {
    res.type('application/json').send(clientConfig);
  });
  router.use('/ui', express.static(dir, { index: 'index.html', etag: false, lastModified: false, redirect: false, dotfiles: 'ignore', fallthrough: true }));
  return router;
}
