// Container HEALTHCHECK: healthy when the service's own listener answers GET /healthz with 200. The queue services
// (schematic-store, registry-proxy, build-worker, signing) serve it on METRICS_PORT; the gateway on PORT. Both are
// tried, in that order, so one image-level check fits all five entry points. Plain node: no curl in the image.
'use strict';
const http = require('node:http');

const ports = [process.env.METRICS_PORT, process.env.PORT || '8080'].filter((p) => p && Number(p) > 0);

function probe(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: Number(port), path: '/healthz', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

(async () => {
  for (const port of ports) if (await probe(port)) process.exit(0);
  process.stderr.write(`no /healthz answered on port(s) ${ports.join(', ')}\n`);
  process.exit(1);
})();
