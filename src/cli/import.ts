/** `mado-gateway import` — implemented with the ingest service (issue 5). */
export async function runImport(): Promise<number> {
  process.stderr.write('mado-gateway import: not available in this build\n');
  return 3;
}
