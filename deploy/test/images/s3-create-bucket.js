// One-shot bucket creation (docker-compose.test.yml's stand-in for `mc mb --ignore-existing`): PUT /<bucket> on the
// S3 server until it answers; an existing bucket counts as created.
'use strict';
const [endpoint, bucket] = process.argv.slice(2);
async function main() {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const res = await fetch(new URL(`/${bucket}`, endpoint), { method: 'PUT' });
      const body = await res.text();
      if (res.ok || /BucketAlready(OwnedByYou|Exists)/.test(body)) {
        process.stdout.write(`bucket ${bucket} ready at ${endpoint}\n`);
        return;
      }
      throw new Error(`${res.status} ${body.slice(0, 200)}`);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
main().catch((err) => {
  process.stderr.write(`create bucket: ${err.message}\n`);
  process.exit(1);
});
