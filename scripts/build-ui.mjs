// Builds the web page (ui/) into dist/ui/ with esbuild: one bundled, minified script, one style
// sheet and index.html. Plain JavaScript so `npm run build` needs no TypeScript loader.
// Usage: node scripts/build-ui.mjs [OUT_DIR]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function buildUi(outDir = path.join(ROOT, 'dist', 'ui')) {
  fs.mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: { app: path.join(ROOT, 'ui', 'src', 'main.ts'), style: path.join(ROOT, 'ui', 'style.css') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    // Evergreen browsers of the last few years (laptop and tablet)
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
  });
  fs.copyFileSync(path.join(ROOT, 'ui', 'index.html'), path.join(outDir, 'index.html'));
  return outDir;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = await buildUi(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  console.log(`web page built into ${path.relative(process.cwd(), out) || '.'}`);
}
