// s3rver on :9000 with path-style buckets under /data (what docker-compose.test.yml runs in place of MinIO).
'use strict';
const S3rver = require('s3rver');
const server = new S3rver({ port: 9000, address: '0.0.0.0', directory: '/data', silent: true, vhostBuckets: false });
server.run().then(
  () => process.stdout.write('s3rver listening on :9000\n'),
  (err) => {
    process.stderr.write(`s3rver: ${err.stack || err}\n`);
    process.exit(1);
  },
);
// PID 1 in a container: exit on the stop signal instead of waiting for the kill.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
