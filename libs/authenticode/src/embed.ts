/**
 * Embedding an Authenticode signature: the unsigned image, zero padding to 8 bytes, then one WIN_CERTIFICATE
 * (dwLength, wRevision 0x0200, wCertificateType PKCS_SIGNED_DATA, the SignedData DER, padded to 8 bytes), with the
 * Certificate Table directory pointing at it and the PE checksum recomputed. The same input and key give the same
 * bytes. The worker side uses signPeFile with a signer that asks the signing service; the key never comes here.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { alignmentPadding, authenticodeDigestOf, peChecksum, readPeLayout } from './image-hash';

export const WIN_CERT_REVISION_2_0 = 0x0200;
export const WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002;

/** Returns the Authenticode SignedData (ContentInfo DER) for a SHA-256 image digest. */
export type AuthenticodeSigner = (sha256: Buffer) => Promise<Buffer>;

/** WIN_CERTIFICATE around `content`, padded to a multiple of 8 bytes (dwLength counts the unpadded structure). */
export function winCertificate(content: Buffer, certificateType: number): Buffer {
  const length = 8 + content.length;
  const out = Buffer.alloc(length + alignmentPadding(length));
  out.writeUInt32LE(length, 0);
  out.writeUInt16LE(WIN_CERT_REVISION_2_0, 4);
  out.writeUInt16LE(certificateType, 6);
  content.copy(out, 8);
  return out;
}

export interface SignPeResult {
  sha256: Buffer;
  /** bytes of the signed file */
  size: number;
}

/**
 * Sign the PE file at `input` into `output` (written next to it under a temporary name, then renamed). The input
 * must be unsigned: re-signing a signed image is a different operation (append or replace) that nothing here needs.
 */
export async function signPeFile(input: string, output: string, signer: AuthenticodeSigner): Promise<SignPeResult> {
  const src = await fsp.open(input, 'r');
  let sha256: Buffer;
  let layout;
  try {
    layout = await readPeLayout(src);
    if (layout.certificateTable) throw new Error(`${input}: already signed (certificate table of ${layout.certificateTable.size} bytes)`);
    sha256 = await authenticodeDigestOf(src, layout);
  } finally {
    await src.close();
  }
  const signedData = await signer(sha256);
  const table = winCertificate(signedData, WIN_CERT_TYPE_PKCS_SIGNED_DATA);
  const tableOffset = layout.imageEnd + alignmentPadding(layout.imageEnd);

  const tmp = path.join(path.dirname(output), `.${path.basename(output)}.${process.pid}.tmp`);
  await fsp.copyFile(input, tmp);
  const out = await fsp.open(tmp, 'r+');
  try {
    await out.write(Buffer.alloc(tableOffset - layout.imageEnd), 0, tableOffset - layout.imageEnd, layout.imageEnd);
    await out.write(table, 0, table.length, tableOffset);
    const dir = Buffer.alloc(8);
    dir.writeUInt32LE(tableOffset, 0);
    dir.writeUInt32LE(table.length, 4);
    await out.write(dir, 0, 8, layout.certificateDirectoryOffset);
    const sum = Buffer.alloc(4);
    sum.writeUInt32LE(await peChecksum(out, layout.checkSumOffset), 0);
    await out.write(sum, 0, 4, layout.checkSumOffset);
    await out.sync();
  } catch (e) {
    await out.close();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await out.close();
  await fsp.rename(tmp, output);
  return { sha256, size: tableOffset + table.length };
}
