#!/usr/bin/env node
// Thin launcher: runs the compiled CLI (npm run build produces dist/).
import('../dist/src/cli.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('mado-gateway: not built yet; run `npm run build` first');
    process.exit(3);
  }
  throw err;
});
