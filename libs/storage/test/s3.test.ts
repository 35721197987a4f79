import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createS3Store, S3ObjectStore } from '../src';
import { DigestStream } from '../src/common';
import { startS3 } from '../../../test/support/procs';
import { collect, expectBytes, expectStorageError, generatedStream, MiB, objectStoreSuite, sha256 } from './suite';

type S3Handle = Awaited<ReturnType<typeof startS3>>;
let s3: S3Handle | undefined;
async function server(): Promise<S3Handle> {
  if (!s3) s3 = await startS3('image-factory');
  return s3;
}
afterAll(async () => {
  await s3?.stop();
});

function storeFor(h: S3Handle, extra: Partial<Parameters<typeof createS3Store>[0]> = {}): S3ObjectStore {
  return createS3Store({
    endpoint: h.endpoint,
    region: 'us-east-1',
    bucket: h.bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    forcePathStyle: true,
    ...extra,
  }) as S3ObjectStore;
}

/** Records the S3 operations a store sends. */
function recordCommands(client: S3Client): string[] {
  const names: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      names.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: `record-${Math.random()}` },
  );
  return names;
}

objectStoreSuite('S3 (s3rver)', {
  async setup() {
    // Minimum part size so that the 40 MiB put is clearly separated from its memory bound; the defaults
    // (8 MiB parts) are exercised with a bigger object in 'S3 store specifics'.
    return { store: storeFor(await server(), { partSizeBytes: 5 * MiB }), teardown: async () => {} };
  },
  // lib-storage keeps about (queueSize + 2) part buffers alive: 2 parts in flight, the previous one until the next
  // is pulled, and the one being assembled (+ its Buffer.concat copy). 4 x 5.25 MiB + stream buffers.
  streamMemoryBudget: 28 * MiB,
  // s3rver writes objects in place; real S3 replaces them atomically.
  atomicServer: false,
  // s3rver stores each key segment as a file name (NAME_MAX 255).
  longSegments: false,
});

describe('S3 store specifics', () => {
  jest.setTimeout(120000);

  test('kind, ping, and UNAVAILABLE for a missing bucket or a dead endpoint', async () => {
    const h = await server();
    const store = storeFor(h);
    expect(store.kind).toBe('s3');
    await store.ping();
    await expectStorageError(storeFor(h, { bucket: 'no-such-bucket' }).ping(), 'UNAVAILABLE');
    const dead = storeFor(h, { endpoint: 'http://127.0.0.1:1' });
    await expectStorageError(dead.ping(), 'UNAVAILABLE');
    await expectStorageError(dead.head('k'), 'UNAVAILABLE');
    await expectStorageError(dead.put('k', Buffer.from('x')), 'UNAVAILABLE');
  });

  test('endpoint without a scheme uses http when insecure', async () => {
    const h = await server();
    const store = storeFor(h, { endpoint: `127.0.0.1:${h.port}`, insecure: true });
    await store.put('scheme/check', Buffer.from('ok'));
    expectBytes(await store.getBuffer('scheme/check', 10), Buffer.from('ok'));
  });

  test('buffer puts are a single PutObject carrying the sha256 metadata', async () => {
    const store = storeFor(await server());
    const cmds = recordCommands(store.client);
    const data = randomBytes(20 * MiB);
    await store.put('single/obj', data);
    expect(cmds).toEqual(['PutObjectCommand']);
    expect((await store.head('single/obj'))!.sha256).toBe(sha256(data));
  });

  test('streamed put with a known digest: multipart straight to the final key', async () => {
    const store = storeFor(await server());
    const cmds = recordCommands(store.client);
    const body = randomBytes(20 * MiB);
    const digest = sha256(body);
    const put = await store.put('mp/known', Readable.from(chunksOf(body, MiB)), { expectedSha256: digest });
    expect(put).toMatchObject({ size: 20 * MiB, sha256: digest });
    expect(cmds[0]).toBe('CreateMultipartUploadCommand');
    expect(cmds.filter((c) => c === 'UploadPartCommand')).toHaveLength(3);
    expect(cmds[cmds.length - 1]).toBe('CompleteMultipartUploadCommand');
    expect(cmds).not.toContain('CopyObjectCommand');
    expect((await store.head('mp/known'))!.sha256).toBe(digest);
  });

  test('streamed put with an unknown digest: staged multipart upload, then one copy publishes data + metadata', async () => {
    const store = storeFor(await server());
    const cmds = recordCommands(store.client);
    const src = generatedStream(20 * MiB, MiB);
    const put = await store.put('mp/unknown', src.stream, { contentType: 'application/zstd', metadata: { a: 'b' } });
    expect(put.sha256).toBe(src.state.sha256);
    expect(cmds).toEqual([
      'CreateMultipartUploadCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'CompleteMultipartUploadCommand',
      'CopyObjectCommand',
      'DeleteObjectCommand',
    ]);
    expect(await store.head('mp/unknown')).toMatchObject({
      size: 20 * MiB,
      sha256: src.state.sha256,
      contentType: 'application/zstd',
      metadata: { a: 'b' },
    });
    // The staging object is gone (raw listing, bypassing the store's .tmp/ filter).
    const raw = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: '.tmp/' }));
    expect(raw.Contents ?? []).toEqual([]);
  });

  test('digest mismatch on a multipart upload aborts it', async () => {
    const store = storeFor(await server());
    const cmds = recordCommands(store.client);
    const src = generatedStream(20 * MiB, MiB);
    await expectStorageError(store.put('mp/aborted', src.stream, { expectedSha256: sha256(Buffer.from('x')) }), 'DIGEST_MISMATCH');
    expect(cmds).toContain('AbortMultipartUploadCommand');
    expect(cmds).not.toContain('CompleteMultipartUploadCommand');
    expect(await store.head('mp/aborted')).toBeNull();
  });

  test('memory of a streamed put with default part size does not grow with the object (96 MiB)', async () => {
    const store = storeFor(await server());
    const size = 96 * MiB;
    const src = generatedStream(size, 256 * 1024, 8);
    const put = await store.put('mem/large', src.stream);
    expect(put).toMatchObject({ size, sha256: src.state.sha256 });
    const grew = src.state.peak - src.state.baseline;
    if (process.env.STORAGE_TEST_VERBOSE) process.stderr.write(`[S3 defaults] 96 MiB put: live buffers grew by ${(grew / MiB).toFixed(1)} MiB\n`);
    // About (queueSize 2 + 2) x 8.25 MiB (measured 32-35 MiB): bounded by the part size, not the 96 MiB object.
    expect(grew).toBeLessThan(48 * MiB);
    expect(await store.head('mem/large')).toMatchObject({ size, sha256: src.state.sha256 });
    await store.delete('mem/large');
  });

  test('a small streamed body with a wrong digest never reaches S3', async () => {
    const store = storeFor(await server());
    const cmds = recordCommands(store.client);
    await expectStorageError(store.put('small/wrong', Readable.from([Buffer.from('abc')]), { expectedSha256: sha256(Buffer.from('x')) }), 'DIGEST_MISMATCH');
    expect(cmds).toEqual([]);
  });

  describe('streamed put of known size and digest (a finished file): one PutObject', () => {
    const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

    test('no multipart: one PutObject; the server keeps the digest and its ETag is the MD5', async () => {
      const store = storeFor(await server());
      const cmds = recordCommands(store.client);
      const body = randomBytes(20 * MiB + 123);
      const put = await store.put('single/known', Readable.from(chunksOf(body, MiB)), { expectedSha256: sha256(body), size: body.length, expectedMd5: md5(body), metadata: { a: 'b' } });
      expect(put).toMatchObject({ size: body.length, sha256: sha256(body), etag: md5(body) });
      expect(cmds).toEqual(['PutObjectCommand']);
      const head = await store.head('single/known');
      expect(head).toMatchObject({ size: body.length, sha256: sha256(body), metadata: { a: 'b' }, serverDigests: { md5: md5(body) } });
      expectBytes(await store.getBuffer('single/known', body.length), body);
    });

    test('above maxSinglePutBytes: parts, straight to the final key', async () => {
      const store = storeFor(await server(), { maxSinglePutBytes: 8 * MiB });
      const cmds = recordCommands(store.client);
      const body = randomBytes(12 * MiB);
      await store.put('single/too-big', Readable.from(chunksOf(body, MiB)), { expectedSha256: sha256(body), size: body.length });
      expect(cmds).toEqual(['CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand']);
      expect((await store.head('single/too-big'))!.sha256).toBe(sha256(body));
    });

    test('digest mismatch: the request is aborted short of its length and nothing of it is visible', async () => {
      const store = storeFor(await server());
      const good = randomBytes(6 * MiB);
      await store.put('single/replaced', good);
      const cmds = recordCommands(store.client);
      const bad = randomBytes(9 * MiB);
      await expectStorageError(
        store.put('single/replaced', Readable.from(chunksOf(bad, MiB)), { expectedSha256: sha256(good), size: bad.length, removeOnFailure: true }),
        'DIGEST_MISMATCH',
      );
      expect(cmds.slice(0, 2)).toEqual(['PutObjectCommand', 'DeleteObjectCommand']);
      // then only looks for a truncated body the server may store late (and removes it): no second upload
      expect(cmds.slice(2).every((c) => c === 'HeadObjectCommand' || c === 'DeleteObjectCommand')).toBe(true);
      // s3rver writes a PUT in place (real S3 would keep the old object): removeOnFailure leaves nothing.
      expect(await store.head('single/replaced')).toBeNull();
    });

    test('a body shorter or longer than declared fails and publishes nothing', async () => {
      const store = storeFor(await server());
      const body = randomBytes(3 * MiB);
      await expectStorageError(store.put('single/short', Readable.from([body]), { expectedSha256: sha256(body), size: body.length + 1, removeOnFailure: true }), 'DIGEST_MISMATCH');
      expect(await store.head('single/short')).toBeNull();
      await expectStorageError(store.put('single/long', Readable.from([body]), { expectedSha256: sha256(body), size: body.length - 1, removeOnFailure: true }), 'DIGEST_MISMATCH');
      expect(await store.head('single/long')).toBeNull();
    });

    test('a failing source fails the put with its own error and publishes nothing', async () => {
      const store = storeFor(await server());
      async function* failing(): AsyncGenerator<Buffer> {
        yield randomBytes(2 * MiB);
        throw new Error('disk went away');
      }
      await expect(store.put('single/failing', Readable.from(failing()), { expectedSha256: sha256(Buffer.from('x')), size: 4 * MiB, removeOnFailure: true })).rejects.toThrow('disk went away');
      expect(await store.head('single/failing')).toBeNull();
    });

    test('the last chunk is held back until the digest checked out', async () => {
      const pass = async (expected: string) => {
        const d = new DigestStream('k', expected, undefined, { holdLast: true, size: 9 });
        const out: Buffer[] = [];
        d.on('data', (c: Buffer) => out.push(c));
        const done = new Promise<Error | undefined>((resolve) => {
          d.on('end', () => resolve(undefined));
          d.on('error', resolve);
        });
        for (const c of ['abc', 'def', 'ghi']) d.write(Buffer.from(c));
        d.end();
        return { err: await done, out: Buffer.concat(out).toString() };
      };
      expect(await pass(sha256(Buffer.from('abcdefghi')))).toEqual({ err: undefined, out: 'abcdefghi' });
      const wrong = await pass(sha256(Buffer.from('x')));
      expect(wrong.out).toBe('abcdef');
      expect(wrong.err).toMatchObject({ code: 'DIGEST_MISMATCH' });
    });

    test('HEAD reports a full-object SHA-256 checksum the server kept; composite checksums and multipart ETags are not digests', async () => {
      const digest = sha256(Buffer.from('x'));
      const b64 = Buffer.from(digest, 'hex').toString('base64');
      const answers = [
        { ContentLength: 1, ETag: '"9dd4e461268c8034f5c8564e155c67a6"', ChecksumSHA256: b64, ChecksumType: 'FULL_OBJECT' },
        { ContentLength: 1, ETag: '"9dd4e461268c8034f5c8564e155c67a6-2"', ChecksumSHA256: `${b64}-2`, ChecksumType: 'COMPOSITE' },
      ];
      const sent: Record<string, unknown>[] = [];
      const fake = { send: async (cmd: { input: Record<string, unknown> }) => (sent.push(cmd.input), answers[sent.length - 1]) } as unknown as S3Client;
      const store = createS3Store({ bucket: 'b', client: fake });
      expect((await store.head('a'))!.serverDigests).toEqual({ sha256: digest, md5: '9dd4e461268c8034f5c8564e155c67a6' });
      expect((await store.head('b'))!.serverDigests).toBeUndefined();
      expect(sent[0]).toMatchObject({ ChecksumMode: 'ENABLED' });
    });
  });

  describe('streamed put of known size, digest recorded elsewhere (a file still being written): one PutObject as it comes', () => {
    const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
    const unrecorded = (size: number) => ({ size, digestRecordedElsewhere: true, removeOnFailure: true });

    test('one PutObject without checksum headers or a recorded digest; the ETag is the MD5 of the stored bytes', async () => {
      const store = storeFor(await server());
      const cmds = recordCommands(store.client);
      const sentHeaders: Record<string, string>[] = [];
      store.client.middlewareStack.add(
        (next) => async (args) => {
          sentHeaders.push({ ...(args.request as { headers: Record<string, string> }).headers });
          return next(args);
        },
        { step: 'finalizeRequest', name: 'record-headers' },
      );
      const body = randomBytes(20 * MiB + 123);
      const put = await store.put('growing/iso', Readable.from(chunksOf(body, MiB)), { ...unrecorded(body.length), metadata: { a: 'b' } });
      // the caller hashed the bytes: the store does not hash them again
      expect(put).toEqual({ key: 'growing/iso', size: body.length, etag: md5(body) });
      expect(cmds).toEqual(['PutObjectCommand']);
      expect(Object.keys(sentHeaders[0]).filter((h) => /checksum|content-md5|x-amz-meta-sha256/i.test(h))).toEqual([]);
      const head = await store.head('growing/iso');
      expect(head).toMatchObject({ size: body.length, metadata: { a: 'b' }, serverDigests: { md5: md5(body) } });
      expect(head!.sha256).toBeUndefined();
      expectBytes(await store.getBuffer('growing/iso', body.length), body);
    });

    test('a body shorter or longer than declared, or a source failing mid-stream, leaves nothing under the key', async () => {
      const store = storeFor(await server());
      const body = randomBytes(3 * MiB);
      await store.put('growing/short', randomBytes(MiB)); // an earlier object under the key goes too (it is unpublished)
      await expectStorageError(store.put('growing/short', Readable.from([body]), unrecorded(body.length + 1)), 'DIGEST_MISMATCH');
      expect(await store.head('growing/short')).toBeNull();
      await expectStorageError(store.put('growing/long', Readable.from(chunksOf(body, MiB)), unrecorded(body.length - 1)), 'DIGEST_MISMATCH');
      expect(await store.head('growing/long')).toBeNull();
      async function* failing(): AsyncGenerator<Buffer> {
        yield randomBytes(2 * MiB);
        await new Promise((r) => setTimeout(r, 50));
        throw new Error('xorriso failed');
      }
      await expect(store.put('growing/failing', Readable.from(failing()), unrecorded(4 * MiB))).rejects.toThrow('xorriso failed');
      expect(await store.head('growing/failing')).toBeNull();
    });

    test('above maxSinglePutBytes: parts, straight to the final key, no staging copy', async () => {
      const store = storeFor(await server(), { maxSinglePutBytes: 8 * MiB });
      const cmds = recordCommands(store.client);
      const body = randomBytes(12 * MiB);
      await store.put('growing/big', Readable.from(chunksOf(body, MiB)), unrecorded(body.length));
      expect(cmds).toEqual(['CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand']);
      expectBytes(await store.getBuffer('growing/big', body.length), body);
    });
  });

  test('list hides staging objects left behind under .tmp/', async () => {
    const store = storeFor(await server());
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: '.tmp/leftover', Body: 'x' }));
    await store.put('visible/one', Buffer.from('1'));
    const keys = (await collect(store.list(''))).map((i) => i.key);
    expect(keys).toContain('visible/one');
    expect(keys.filter((k) => k.startsWith('.tmp'))).toEqual([]);
  });

  test('publicEndpoint is used for presigned URLs only', async () => {
    const h = await server();
    const store = storeFor(h, { publicEndpoint: 'https://downloads.example.com:8443' });
    await store.put('pub/x', Buffer.from('x'));
    const url = new URL((await store.presignGet('pub/x', { ttlSeconds: 3600, contentDisposition: 'attachment; filename="x.bin"' }))!);
    expect(url.origin).toBe('https://downloads.example.com:8443');
    expect(url.pathname).toBe(`/${h.bucket}/pub/x`);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('3600');
    // ttl ≤ 0 falls back to one hour; huge TTLs are capped at the SigV4 maximum of 7 days.
    expect(new URL((await store.presignGet('pub/x', { ttlSeconds: 0 }))!).searchParams.get('X-Amz-Expires')).toBe('3600');
    expect(new URL((await store.presignGet('pub/x', { ttlSeconds: 1e9 }))!).searchParams.get('X-Amz-Expires')).toBe('604800');
  });

  test('objects above the single-copy limit are published with a multipart copy (UploadPartCopy)', async () => {
    // s3rver does not implement UploadPartCopy, so this drives the store against a scripted client.
    const sent: { name: string; input: Record<string, unknown> }[] = [];
    const fake = {
      config: { requestChecksumCalculation: async () => 'WHEN_REQUIRED' },
      send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const name = cmd.constructor.name;
        sent.push({ name, input: cmd.input });
        switch (name) {
          case 'CreateMultipartUploadCommand':
            return { UploadId: cmd.input.Key === 'big/object' ? 'final-up' : 'staging-up' };
          case 'UploadPartCommand':
            return { ETag: `"u${cmd.input.PartNumber}"` };
          case 'UploadPartCopyCommand':
            return { CopyPartResult: { ETag: `"p${cmd.input.PartNumber}"` } };
          case 'CompleteMultipartUploadCommand':
            return { ETag: cmd.input.Key === 'big/object' ? '"final-3"' : '"staged-2"' };
          case 'DeleteObjectCommand':
            return {};
          default:
            throw new Error(`unexpected ${name}`);
        }
      },
    } as unknown as S3Client;
    const store = createS3Store({ bucket: 'b', client: fake, maxSingleCopyBytes: 4, copyPartBytes: 5 * MiB }) as S3ObjectStore;
    const body = randomBytes(12 * MiB);
    const put = await store.put('big/object', Readable.from([body]), { contentType: 'application/x-raw' });
    expect(put).toMatchObject({ size: 12 * MiB, sha256: sha256(body), etag: 'final-3' });
    const names = sent.map((s) => s.name);
    expect(names).toEqual([
      // staging upload (8 MiB parts)
      'CreateMultipartUploadCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'CompleteMultipartUploadCommand',
      // publish by multipart copy (5 MiB copy parts)
      'CreateMultipartUploadCommand',
      'UploadPartCopyCommand',
      'UploadPartCopyCommand',
      'UploadPartCopyCommand',
      'CompleteMultipartUploadCommand',
      'DeleteObjectCommand',
    ]);
    const staged = sent[0].input.Key as string;
    expect(staged.startsWith('.tmp/')).toBe(true);
    expect(sent[0].input.Metadata).toEqual({});
    expect(sent[4].input).toMatchObject({ Key: 'big/object', ContentType: 'application/x-raw', Metadata: { sha256: sha256(body) } });
    const copies = sent.filter((s) => s.name === 'UploadPartCopyCommand');
    expect(copies.map((s) => s.input.CopySourceRange).sort()).toEqual(
      [`bytes=0-${5 * MiB - 1}`, `bytes=${10 * MiB}-${12 * MiB - 1}`, `bytes=${5 * MiB}-${10 * MiB - 1}`],
    );
    for (const c of copies) expect(c.input).toMatchObject({ CopySource: `b/${staged}`, Key: 'big/object', UploadId: 'final-up' });
    expect(sent[8].input).toMatchObject({
      Key: 'big/object',
      UploadId: 'final-up',
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"p1"' }, { PartNumber: 2, ETag: '"p2"' }, { PartNumber: 3, ETag: '"p3"' }] },
    });
    expect(sent[9].input).toMatchObject({ Key: staged });
  });
});

function* chunksOf(buf: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
