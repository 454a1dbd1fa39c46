/**
 * Which configured upstream serves a series, from what a manifest says about where it lives
 * (MADO addressing modes, SUPPL §X.4.1.2): the Retrieve URL (0008,1190) under an upstream's base
 * URL or one of its retrieveUrlPrefixes (longest prefix wins), else the Retrieve Location UID
 * (0040,E011) among its retrieveLocationUids, else the Retrieve AE Title (0008,0054) among its
 * retrieveAeTitles, else the upstream named 'default'
 * (DICOMWEB_UPSTREAM_URL). One definition for WADO-RS routing and for the Endpoint addresses the
 * gateway hands out. Pure.
 */

export interface RoutableUpstream {
  name: string;
  url: string;
  retrieveUrlPrefixes: readonly string[];
  retrieveLocationUids: readonly string[];
  retrieveAeTitles?: readonly string[];
}

export interface RetrieveLocation {
  retrieveUrl?: string | null;
  retrieveLocationUid?: string | null;
  /** Retrieve AE Title (0008,0054): an XDS-I.b KOS may name only the archive's AE */
  retrieveAeTitle?: string | null;
}

/** True when `url` equals `prefix` or continues it at a path boundary (no "host.evil" tricks). */
function underPrefix(url: string, prefix: string): boolean {
  const p = prefix.replace(/\/+$/, '');
  if (!url.startsWith(p)) return false;
  const rest = url.slice(p.length);
  return rest === '' || rest.startsWith('/') || rest.startsWith('?');
}

export function routeUpstream<U extends RoutableUpstream>(upstreams: readonly U[], loc: RetrieveLocation): U | undefined {
  const url = loc.retrieveUrl?.trim();
  if (url) {
    let best: { u: U; len: number } | undefined;
    for (const u of upstreams) {
      for (const p of [...u.retrieveUrlPrefixes, u.url]) {
        if (underPrefix(url, p) && (!best || p.length > best.len)) best = { u, len: p.length };
      }
    }
    if (best) return best.u;
  }
  const uid = loc.retrieveLocationUid?.trim();
  if (uid) {
    const u = upstreams.find((x) => x.retrieveLocationUids.includes(uid));
    if (u) return u;
  }
  // AE Titles are case-sensitive and space-padded (PS3.5 Table 6.2-1, VR AE)
  const ae = loc.retrieveAeTitle?.trim();
  if (ae) {
    const u = upstreams.find((x) => x.retrieveAeTitles?.includes(ae));
    if (u) return u;
  }
  return upstreams.find((x) => x.name === 'default');
}
