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
  const result = await esbuild.build({
    write: false,
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
  // Each file replaced atomically (write + rename): a gateway serving dist/ui while it is rebuilt
  // never sends a half-written file.
  const files = [...result.outputFiles.map((f) => ({ path: f.path, contents: f.contents })), { path: path.join(outDir, 'index.html'), contents: fs.readFileSync(path.join(ROOT, 'ui', 'index.html')) }];
  for (const f of files) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, f.contents);
    fs.renameSync(tmp, f.path);
  }
  return outDir;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = await buildUi(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  console.log(`web page built into ${path.relative(process.cwd(), out) || '.'}`);
}
