#!/usr/bin/env node
'use strict';
// The `talos-factory` command (tools/cli). Kept as plain JavaScript so the bin link exists before the TypeScript is
// compiled; it only loads the compiled CLI.
let cli;
try {
  cli = require('../dist/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    process.stderr.write('talos-factory: not compiled yet: run `npm run build` in the checkout first\n');
    process.exit(1);
  }
  throw err;
}
cli.run();
