/** What GET /ui/config.json says (src/ui/routes.ts uiClientConfig builds it). */
export interface UiConfig {
  auth: { issuer: string; clientId: string; scope: string; resource?: string } | null;
  viewerUrl: string | null;
}

export async function loadConfig(): Promise<UiConfig> {
  const r = await fetch('config.json', { cache: 'no-store' });
  if (!r.ok) throw new Error(`The page's configuration could not be loaded (HTTP ${r.status})`);
  return (await r.json()) as UiConfig;
}
