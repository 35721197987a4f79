/**
 * Integrity of published assets over a real local object store: what publishes an asset (object with its build-time
 * digests, then its signature file), what verification refuses, quarantine, the per-process verified cache, the scrub.
 */
import { createHash, generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createLocalStore, LocalObjectStore, ObjectStore } from '@factory/storage';
import {
  AssetRecord,
  assetMetadata,
  assetRecordFrom,
  assetSignatureKey,
  AssetVerifier,
  encodeSignatureFile,
  findAsset,
  quarantineAsset,
  quarantineKey,
  scrubAssets,
  Sha512Deriver,
  signatureMatches,
  statementBytes,
  StoredBytesMismatch,
  validatorOf,
  verifyStoredAsset,
} from '../src';

const hex = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');
const KEY = `assets/${'a'.repeat(64)}`;
const BYTES = Buffer.from('the bytes of an asset');
const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });

let dir: string;
let store: LocalObjectStore;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'asset-integrity-'));
  store = createLocalStore(dir) as LocalObjectStore;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The build-worker's publish step, with the signing service's signature made by `key`. */
async function publish(key: string, bytes: Buffer, signingKey: KeyObject = signer.privateKey): Promise<void> {
  await store.put(key, bytes);
  const statement = { key, size: bytes.length, sha256: hex('sha256', bytes), sha512: hex('sha512', bytes) };
  await store.put(assetSignatureKey(key), encodeSignatureFile(statement, sign('sha256', statementBytes(statement), signingKey).toString('base64')));
}

const find = async (key = KEY) => (await findAsset(store, key, 'application/octet-stream'))!;

function flipByte(key: string, at = 3): void {
  const fd = openSync(store.pathFor(key), 'r+');
  try {
    writeSync(fd, Buffer.from([0xff]), 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

describe('the record and its signature', () => {
  const record: AssetRecord = { key: KEY, size: 3, sha256: 'b'.repeat(64), sha512: 'c'.repeat(128), contentType: 'x/y' };

  test("a record takes its digests from the statement, key and size from the object; else from an earlier version's metadata", () => {
    const statement = { key: `assets/${'f'.repeat(64)}`, size: 99, sha256: 'b'.repeat(64), sha512: 'c'.repeat(128) };
    // the statement's own key and size are not taken: a statement for another object or size cannot verify for this one
    expect(assetRecordFrom(KEY, { size: 3, contentType: 'x/y' }, 'f', statement)).toEqual(record);
    // the statement wins over metadata (which anyone who can write storage can rewrite)
    expect(assetRecordFrom(KEY, { size: 3, sha256: 'd'.repeat(64), contentType: 'x/y', metadata: { sha512: 'e'.repeat(128) } }, 'f', statement)).toEqual(record);
    // objects stored by earlier versions: the SHA-256 the store kept and the SHA-512 in the metadata
    expect(assetRecordFrom(KEY, { size: 3, sha256: 'b'.repeat(64), contentType: 'x/y', metadata: { sha512: 'c'.repeat(128) } }, 'f')).toEqual(record);
    expect(assetRecordFrom(KEY, { size: 3, sha256: 'b'.repeat(64), contentType: 'x/y', metadata: { sha512: 'c'.repeat(128) } }, 'f', { sha256: 'junk' })).toEqual(record);
    // nothing describes the digests: no record (unpublished; rebuilt)
    expect(assetRecordFrom(KEY, { size: 3, sha256: 'b'.repeat(64) }, 'f')).toBeUndefined();
    expect(assetRecordFrom(KEY, { size: 3, sha256: 'b'.repeat(64), metadata: { sha512: 'short' } }, 'f')).toBeUndefined();
    expect(assetRecordFrom(KEY, { size: 3 }, 'f', { sha256: 'b'.repeat(64), sha512: 'C'.repeat(128) })).toBeUndefined();
    expect(assetRecordFrom(KEY, null, 'f', statement)).toBeUndefined();
    // the installer descriptor stays in the metadata (known before the upload)
    const image = { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: `sha256:${'1'.repeat(64)}`, size: 7 };
    expect(assetRecordFrom(KEY, { size: 3, contentType: 'x/y', metadata: assetMetadata(image) }, 'f', statement)).toEqual({ ...record, image });
    expect(assetMetadata()).toEqual({});
  });

  test('the signed statement is fixed-order JSON of key, size and digests', () => {
    expect(statementBytes(record).toString()).toBe(`{"type":"talos-image-factory/asset-digest/v1","key":"${KEY}","size":3,"sha256":"${'b'.repeat(64)}","sha512":"${'c'.repeat(128)}"}`);
  });

  test("this version's statements name no SHA-512 (v3): records from them, their bytes, and no v1/v2 signature verifies as one", () => {
    const { sha512: _sha512, ...current } = record;
    expect(assetRecordFrom(KEY, { size: 3, contentType: 'x/y' }, 'f', { sha256: 'b'.repeat(64) })).toEqual(current);
    // a statement naming a malformed SHA-512 describes nothing: the metadata of an earlier version, else no record
    expect(assetRecordFrom(KEY, { size: 3, contentType: 'x/y' }, 'f', { sha256: 'b'.repeat(64), sha512: 7 })).toBeUndefined();
    expect(statementBytes(current).toString()).toBe(`{"type":"talos-image-factory/asset-digest/v3","key":"${KEY}","size":3,"sha256":"${'b'.repeat(64)}"}`);
    expect(statementBytes({ ...current, stored: '3:e:7' }).toString()).toBe(`{"type":"talos-image-factory/asset-digest/v3","key":"${KEY}","size":3,"sha256":"${'b'.repeat(64)}","stored":"3:e:7"}`);
    const signed = (r: Omit<AssetRecord, 'contentType'>) => encodeSignatureFile(r, sign('sha256', statementBytes(r), signer.privateKey).toString('base64'));
    expect(signatureMatches(current, signed(current), signer.publicKey)).toBe(true);
    // a v1 signature (with a SHA-512) does not vouch for the record without one, nor the other way round
    expect(signatureMatches(current, signed(record), signer.publicKey)).toBe(false);
    expect(signatureMatches(record, signed(current), signer.publicKey)).toBe(false);
  });

  test('Sha512Deriver: recorded where an earlier version signed one; else read once per SHA-256 and checked against it', async () => {
    const bytes = Buffer.from('some asset bytes');
    const reads: string[] = [];
    const stored = new Map<string, Buffer>([[KEY, bytes]]);
    const store = {
      get: async (key: string) => {
        reads.push(key);
        const b = stored.get(key);
        return b ? { info: { key, size: b.length, etag: 'e', lastModified: new Date(7) }, body: Readable.from([b]) } : null;
      },
    };
    const derive = new Sha512Deriver(store as unknown as Pick<ObjectStore, 'get'>);
    const current = { key: KEY, size: bytes.length, sha256: hex('sha256', bytes), contentType: 'x/y' };
    expect(await derive.of({ ...current, sha512: 'a'.repeat(128) })).toBe('a'.repeat(128));
    expect(reads).toEqual([]);
    expect(await Promise.all([derive.of(current), derive.of(current)])).toEqual([hex('sha512', bytes), hex('sha512', bytes)]);
    expect(await derive.of(current)).toBe(hex('sha512', bytes));
    expect(reads).toEqual([KEY]);
    // stored bytes that do not hash to the signed SHA-256 (or are gone): a mismatch naming the version read
    const other = `assets/${'9'.repeat(64)}`;
    stored.set(other, Buffer.from('some asset bytez'));
    await expect(derive.of({ ...current, key: other, sha256: 'c'.repeat(64) })).rejects.toMatchObject({ name: 'Error', key: other, validator: validatorOf({ size: bytes.length, etag: 'e', lastModified: new Date(7) }) });
    await expect(derive.of({ ...current, key: `assets/${'8'.repeat(64)}`, sha256: 'd'.repeat(64) })).rejects.toBeInstanceOf(StoredBytesMismatch);
  });

  test('a signature vouches for exactly the record it was made over, under the signing key only', () => {
    const signed = (r: AssetRecord, k: KeyObject) => encodeSignatureFile(r, sign('sha256', statementBytes(r), k).toString('base64'));
    expect(signatureMatches(record, signed(record, signer.privateKey), signer.publicKey)).toBe(true);
    expect(signatureMatches(record, signed(record, stranger.privateKey), signer.publicKey)).toBe(false);
    for (const changed of [{ size: 4 }, { sha256: 'd'.repeat(64) }, { sha512: 'e'.repeat(128) }, { key: `assets/${'f'.repeat(64)}` }]) {
      expect(signatureMatches({ ...record, ...changed }, signed(record, signer.privateKey), signer.publicKey)).toBe(false);
    }
    for (const junk of ['', 'not json', '{}', '{"signature":""}', '{"signature":"AAAA"}']) expect(signatureMatches(record, Buffer.from(junk), signer.publicKey)).toBe(false);
  });
});

describe('findAsset: published = object + signature file, digests from its statement', () => {
  test('found only once the signature file exists', async () => {
    await store.put(KEY, BYTES);
    expect(await findAsset(store, KEY, 'x/y')).toBeUndefined();
    await publish(KEY, BYTES);
    const found = await find();
    expect(found.record).toMatchObject({ key: KEY, size: BYTES.length, sha256: hex('sha256', BYTES), sha512: hex('sha512', BYTES) });
    expect(found.validator).toMatch(new RegExp(`^${BYTES.length}:${hex('sha256', BYTES)}:\\d+$`));
  });

  test('an object stored by an earlier version (digests in its metadata, v1 statement) still verifies', async () => {
    await store.put(KEY, BYTES, { metadata: { sha512: hex('sha512', BYTES) } });
    const statement = { key: KEY, size: BYTES.length, sha256: hex('sha256', BYTES), sha512: hex('sha512', BYTES) };
    const signature = sign('sha256', statementBytes(statement), signer.privateKey).toString('base64');
    // the statement is read from the file either way; a file whose statement names no digests falls back to metadata
    for (const file of [encodeSignatureFile(statement, signature), Buffer.from(JSON.stringify({ signature }))]) {
      await store.put(assetSignatureKey(KEY), file);
      const found = await find();
      expect(found.record).toMatchObject({ sha256: statement.sha256, sha512: statement.sha512 });
      expect(await verifyStoredAsset(store, found, signer.publicKey, { sha512: true })).toEqual({ ok: true });
    }
  });

  test("a forged statement fails the signature: other digests, another object's key, another size", async () => {
    await publish(KEY, BYTES);
    const good = JSON.parse((await store.getBuffer(assetSignatureKey(KEY), 1 << 14))!.toString());
    const other = Buffer.from('other bytes, the same length');
    for (const forged of [
      { sha256: hex('sha256', other), sha512: hex('sha512', other) },
      { key: `assets/${'b'.repeat(64)}` },
      { size: BYTES.length + 1 },
    ]) {
      await store.put(assetSignatureKey(KEY), Buffer.from(JSON.stringify({ ...good, statement: { ...good.statement, ...forged } })));
      expect(await verifyStoredAsset(store, await find(), signer.publicKey, { sha512: false })).toMatchObject({ ok: false, problem: 'signature' });
    }
    // a valid signature of another asset, copied next to this one, does not vouch for it
    const elsewhere = `assets/${'b'.repeat(64)}`;
    await publish(elsewhere, BYTES);
    await store.put(assetSignatureKey(KEY), (await store.getBuffer(assetSignatureKey(elsewhere), 1 << 14))!);
    expect(await verifyStoredAsset(store, await find(), signer.publicKey, { sha512: false })).toMatchObject({ ok: false, problem: 'signature' });
  });

  test('a signature file without usable digests (and no metadata digests) is not a published asset', async () => {
    await store.put(KEY, BYTES);
    for (const junk of ['not json', '{}', '{"statement":{"sha256":"x","sha512":"y"},"signature":"AAAA"}']) {
      await store.put(assetSignatureKey(KEY), Buffer.from(junk));
      expect(await findAsset(store, KEY, 'x/y')).toBeUndefined();
    }
  });
});

describe('verifyStoredAsset', () => {
  test('good bytes pass; flipped bytes fail the digest; rewritten bytes and digests fail the signature', async () => {
    await publish(KEY, BYTES);
    expect(await verifyStoredAsset(store, await find(), signer.publicKey, { sha512: true })).toEqual({ ok: true });
    expect(await verifyStoredAsset(store, await find(), stranger.publicKey, { sha512: false })).toMatchObject({ ok: false, problem: 'signature' });

    flipByte(KEY);
    expect(await verifyStoredAsset(store, await find(), signer.publicKey, { sha512: false })).toMatchObject({ ok: false, problem: 'digest' });

    const forged = Buffer.from('forged bytes');
    await store.put(KEY, forged);
    expect(await verifyStoredAsset(store, await find(), signer.publicKey, { sha512: false })).toMatchObject({ ok: false, problem: 'signature' });
  });

  test('an object replaced after it was found is "changed", not corrupt', async () => {
    await publish(KEY, BYTES);
    const found = await find();
    await new Promise((r) => setTimeout(r, 5));
    await publish(KEY, Buffer.from('rebuilt meanwhile'));
    expect(await verifyStoredAsset(store, found, signer.publicKey, { sha512: false })).toMatchObject({ ok: false, problem: 'changed' });
  });
});

describe('a signature naming the stored version the signing service checked (trustSignedVersion)', () => {
  /** Publishes like the signing service does now: the statement names the stored version it checked. */
  async function publishNamingVersion(bytes: Buffer, o: { signedVersion?: string } = {}): Promise<void> {
    await store.put(KEY, bytes);
    const current = validatorOf((await store.head(KEY))!);
    const statement = { key: KEY, size: bytes.length, sha256: hex('sha256', bytes), sha512: hex('sha512', bytes), stored: o.signedVersion ?? current };
    const file = JSON.parse(encodeSignatureFile(statement, sign('sha256', statementBytes(statement), signer.privateKey).toString('base64')).toString());
    // the file always names the current version; the signature covers `signedVersion`
    file.statement.stored = current;
    await store.put(assetSignatureKey(KEY), Buffer.from(JSON.stringify(file)));
  }
  const counting = () => {
    const reads = { n: 0 };
    return { reads, store: { get: (key: string) => (reads.n++, store.get(key)) } };
  };

  test('the statement is v2 with `stored` last; without `stored` it stays v1', () => {
    const s = { key: KEY, size: 3, sha256: 'b'.repeat(64), sha512: 'c'.repeat(128) };
    expect(statementBytes({ ...s, stored: '3:e:7' }).toString()).toBe(`{"type":"talos-image-factory/asset-digest/v2","key":"${KEY}","size":3,"sha256":"${'b'.repeat(64)}","sha512":"${'c'.repeat(128)}","stored":"3:e:7"}`);
    expect(statementBytes(s).toString()).toContain('asset-digest/v1');
  });

  test('the version named is the version found: passes without reading the bytes', async () => {
    await publishNamingVersion(BYTES);
    const c = counting();
    expect(await verifyStoredAsset(c.store, await find(), signer.publicKey, { sha512: false, trustSignedVersion: true })).toEqual({ ok: true });
    expect(c.reads.n).toBe(0);
    // without the option (local stores, the scrub) the bytes are read as before
    expect(await verifyStoredAsset(c.store, await find(), signer.publicKey, { sha512: false })).toEqual({ ok: true });
    expect(c.reads.n).toBe(1);
  });

  test('another version is stored (rewritten since it was signed): read and checked, flipped bytes fail', async () => {
    await publishNamingVersion(BYTES);
    await new Promise((r) => setTimeout(r, 5));
    flipByte(KEY);
    const c = counting();
    expect(await verifyStoredAsset(c.store, await find(), signer.publicKey, { sha512: false, trustSignedVersion: true })).toMatchObject({ ok: false, problem: 'digest' });
    expect(c.reads.n).toBe(1);
  });

  test('a `stored` edited in the signature file to name the current version fails the signature', async () => {
    await publishNamingVersion(BYTES, { signedVersion: `${BYTES.length}:an-older-etag:1` });
    const c = counting();
    expect(await verifyStoredAsset(c.store, await find(), signer.publicKey, { sha512: false, trustSignedVersion: true })).toMatchObject({ ok: false, problem: 'signature' });
    expect(c.reads.n).toBe(0);
  });
});

describe('quarantineAsset', () => {
  test('unpublishes the version found corrupt and keeps its bytes under quarantine/', async () => {
    await publish(KEY, BYTES);
    flipByte(KEY);
    const found = await find();
    const corrupted = (await store.getBuffer(KEY, 1024))!;
    expect(await quarantineAsset(store, { key: KEY, validator: found.validator }, 'digest: test')).toBe('moved');
    expect(await store.head(KEY)).toBeNull();
    expect(await store.head(assetSignatureKey(KEY))).toBeNull();
    expect((await store.getBuffer(quarantineKey(KEY), 1024))!.equals(corrupted)).toBe(true);
    expect((await store.head(quarantineKey(KEY)))!.metadata).toMatchObject({ reason: 'digest: test' });
  });

  test('a copy that cannot be kept: the corrupted object is still removed', async () => {
    await publish(KEY, BYTES);
    const found = await find();
    const failingCopy = Object.assign(Object.create(store) as LocalObjectStore, {
      put: (key: string, body: Buffer | NodeJS.ReadableStream, meta?: object) => (key.startsWith('quarantine/') ? Promise.reject(new Error('EACCES')) : store.put(key, body, meta)),
    }) as unknown as ObjectStore;
    expect(await quarantineAsset(failingCopy, { key: KEY, validator: found.validator }, 'digest: test')).toBe('removed');
    expect(await store.head(KEY)).toBeNull();
    expect(await store.head(quarantineKey(KEY))).toBeNull();
  });

  test('leaves a version that replaced the corrupt one alone', async () => {
    await publish(KEY, BYTES);
    const found = await find();
    await new Promise((r) => setTimeout(r, 5));
    await publish(KEY, BYTES);
    expect(await quarantineAsset(store, { key: KEY, validator: found.validator }, 'digest: test')).toBe('skipped');
    expect(await findAsset(store, KEY, 'x/y')).toBeDefined();
  });
});

describe('AssetVerifier', () => {
  function counting(): { store: ObjectStore; reads: () => number } {
    let reads = 0;
    const wrapped = Object.assign(Object.create(store) as LocalObjectStore, {
      get: (key: string) => {
        reads++;
        return store.get(key);
      },
    });
    return { store: wrapped as unknown as ObjectStore, reads: () => reads };
  }

  test('reads a version once (concurrent checks share the read), again when it changed; reports outcomes', async () => {
    await publish(KEY, BYTES);
    const { store: s, reads } = counting();
    const outcomes: string[] = [];
    const quarantined: string[] = [];
    let keyAsked = 0;
    const verifier = new AssetVerifier({ store: s, publicKey: async () => (keyAsked++, signer.publicKey), events: { verified: (o) => outcomes.push(o), quarantined: (k, p) => quarantined.push(`${k} ${p}`) } });
    const found = await find();
    expect(await Promise.all([verifier.check(found), verifier.check(found), verifier.check(found)])).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(await verifier.check(found)).toEqual({ ok: true });
    expect(reads()).toBe(1);
    expect(keyAsked).toBe(1);

    await new Promise((r) => setTimeout(r, 5));
    flipByte(KEY); // a new mtime: another version
    const changed = await find();
    const verdict = await verifier.check(changed);
    expect(verdict).toMatchObject({ ok: false, problem: 'digest' });
    expect(reads()).toBe(2);
    if (!verdict.ok && verdict.problem !== 'changed') await Promise.all([verifier.quarantine(changed, verdict.problem, verdict.detail), verifier.quarantine(changed, verdict.problem, verdict.detail)]);
    expect(outcomes).toEqual(['ok', 'digest']);
    expect(quarantined).toEqual([`${KEY} digest`]);
    expect(await store.head(KEY)).toBeNull();
  });

  test('a failing public-key lookup is asked again next time', async () => {
    await publish(KEY, BYTES);
    let calls = 0;
    const verifier = new AssetVerifier({
      store,
      publicKey: async () => {
        if (calls++ === 0) throw new Error('signing service down');
        return signer.publicKey;
      },
    });
    await expect(verifier.check(await find())).rejects.toThrow('signing service down');
    expect(await verifier.check(await find())).toEqual({ ok: true });
  });
});

describe('scrubAssets', () => {
  test('verifies every published asset at rest, quarantines what fails, skips signature files and unpublished objects', async () => {
    const keys = ['1', '2', '3', '4'].map((c) => `assets/${c.repeat(64)}`);
    for (const k of keys) await publish(k, Buffer.from(`bytes of ${k}`));
    await store.put(`assets/${'5'.repeat(64)}`, Buffer.from('not signed yet'));
    await store.put('schematics/x', Buffer.from('not an asset'));

    const clean = await scrubAssets(store, signer.publicKey);
    expect(clean).toMatchObject({ checked: 4, unpublished: 1, corrupt: 0, quarantined: 0, problems: [] });

    flipByte(keys[0]);
    const forged = Buffer.from('forged');
    await store.put(keys[1], forged);
    await publish(keys[2], Buffer.from('signed by someone else'), stranger.privateKey);
    const events: string[] = [];
    const found = await scrubAssets(store, signer.publicKey, { verified: (o) => events.push(o), quarantined: (k) => events.push(`quarantined ${k}`) });
    expect(found).toMatchObject({ checked: 4, unpublished: 1, corrupt: 3, quarantined: 3 });
    expect(found.problems.map((p) => [p.key, p.problem])).toEqual([
      [keys[0], 'digest'],
      [keys[1], 'signature'],
      [keys[2], 'signature'],
    ]);
    expect(events.filter((e) => e.startsWith('quarantined')).length).toBe(3);
    for (const k of keys.slice(0, 3)) {
      expect(await store.head(k)).toBeNull();
      expect(await store.head(quarantineKey(k))).not.toBeNull();
    }
    expect(await findAsset(store, keys[3], 'x/y')).toBeDefined();
    expect(await scrubAssets(store, signer.publicKey)).toMatchObject({ checked: 1, corrupt: 0 });
  });

  test('a SHA-512 that does not match the bytes is found at rest (the scrub checks both digests)', async () => {
    // signed over a wrong SHA-512 (as if the signing service had been fooled): the gateway's SHA-256 check passes,
    // the scrub does not
    await store.put(KEY, BYTES);
    const statement = { key: KEY, size: BYTES.length, sha256: hex('sha256', BYTES), sha512: '0'.repeat(128) };
    await store.put(assetSignatureKey(KEY), encodeSignatureFile(statement, sign('sha256', statementBytes(statement), signer.privateKey).toString('base64')));
    expect(await verifyStoredAsset(store, await find(), signer.publicKey, { sha512: false })).toEqual({ ok: true });
    expect((await scrubAssets(store, signer.publicKey)).problems).toMatchObject([{ key: KEY, problem: 'digest' }]);
  });
});
