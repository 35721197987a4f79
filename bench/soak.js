// Soak: mixed load (cache hits, cold builds, installer pulls) with the build-worker killed every minute; see
// test/fuzz/soak.ts. Usage (after `pnpm exec tsc -b`): node bench/soak.js [--minutes 10] [--kill-every 60]
// [--builds-per-minute 4]. Exits 1 on any failed request.
'use strict';
require('../test/fuzz/dist/fuzz/soak.js').soakCli();
