/**
 * Reader of EDK2's non-volatile variable store as OVMF ships it in `OVMF_VARS*.fd`: an EFI_FIRMWARE_VOLUME_HEADER
 * (PI spec vol. 3 §3.2.1), then a VARIABLE_STORE_HEADER and the variable records (EDK2
 * MdeModulePkg/Include/Guid/VariableFormat.h). Used to take the certificates enrolled in a firmware's KEK and db out
 * of Debian's pre-enrolled variable stores (scripts/well-known-certs.sh) and to check them in tests.
 */
import { guidText } from './efi-vars';

/** VARIABLE_STORE_HEADER.Signature of a store whose records carry AUTHENTICATED_VARIABLE_HEADERs */
export const EFI_AUTHENTICATED_VARIABLE_GUID = 'aaf32c78-947b-439a-a180-2e144ec37792';
/** VARIABLE_STORE_HEADER.Signature of a store of plain VARIABLE_HEADERs */
export const EFI_VARIABLE_GUID = 'ddcf3616-3275-4164-98b6-fe85707ffe7d';

const FV_SIGNATURE = '_FVH';
const VARIABLE_STORE_HEADER_SIZE = 28;
const VARIABLE_DATA = 0x55aa;
const VARIABLE_STORE_FORMATTED = 0x5a;
/** VariableFormat.h states (bits are cleared as a record goes through its life) */
const VAR_ADDED = 0x3f;
const VAR_IN_DELETED_TRANSITION = 0xfe;
/** sizes of VARIABLE_HEADER and AUTHENTICATED_VARIABLE_HEADER (packed) */
const VARIABLE_HEADER_SIZE = 32;
const AUTHENTICATED_VARIABLE_HEADER_SIZE = 60;

export interface StoredVariable {
  name: string;
  vendorGuid: string;
  attributes: number;
  /** the record's State byte */
  state: number;
  /** the current value (State VAR_ADDED, or VAR_ADDED while a replacement is being written) */
  live: boolean;
  data: Buffer;
}

/** Offset of 4-byte alignment (HEADER_ALIGN of x86/ARM builds) */
const align4 = (n: number) => (n + 3) & ~3;

/**
 * The variable records of a firmware volume holding an EDK2 variable store (`OVMF_VARS*.fd`), in storage order,
 * deleted ones included (see `live`).
 */
export function readVariableStore(fd: Buffer): StoredVariable[] {
  if (fd.length < 56 || fd.toString('latin1', 40, 44) !== FV_SIGNATURE) throw new Error('not a firmware volume (no _FVH signature)');
  const fvLength = Number(fd.readBigUInt64LE(32));
  const headerLength = fd.readUInt16LE(48);
  if (fvLength > fd.length || headerLength < 56 || headerLength >= fvLength) throw new Error('firmware volume: bad FvLength/HeaderLength');

  const store = headerLength;
  const signature = guidText(fd.subarray(store, store + 16));
  const authenticated = signature === EFI_AUTHENTICATED_VARIABLE_GUID;
  if (!authenticated && signature !== EFI_VARIABLE_GUID) throw new Error(`firmware volume holds no variable store (signature ${signature})`);
  const storeSize = fd.readUInt32LE(store + 16);
  if (fd[store + 20] !== VARIABLE_STORE_FORMATTED) throw new Error('variable store is not formatted');
  const storeEnd = Math.min(store + storeSize, fvLength);
  const headerSize = authenticated ? AUTHENTICATED_VARIABLE_HEADER_SIZE : VARIABLE_HEADER_SIZE;

  const out: StoredVariable[] = [];
  for (let off = align4(store + VARIABLE_STORE_HEADER_SIZE); off + headerSize <= storeEnd; ) {
    if (fd.readUInt16LE(off) !== VARIABLE_DATA) break; // the rest of the store is unused (erased 0xff)
    const state = fd[off + 2];
    const attributes = fd.readUInt32LE(off + 4);
    // NameSize, DataSize and VendorGuid close both header layouts
    const nameSize = fd.readUInt32LE(off + headerSize - 24);
    const dataSize = fd.readUInt32LE(off + headerSize - 20);
    const vendorGuid = guidText(fd.subarray(off + headerSize - 16, off + headerSize));
    const nameStart = off + headerSize;
    const dataStart = nameStart + nameSize;
    const end = dataStart + dataSize;
    if (nameSize % 2 !== 0 || end > storeEnd) throw new Error(`variable record at 0x${off.toString(16)}: bad NameSize/DataSize`);
    out.push({
      name: fd.toString('utf16le', nameStart, dataStart).replace(/\0+$/, ''),
      vendorGuid,
      attributes,
      state,
      live: state === VAR_ADDED || state === (VAR_ADDED & VAR_IN_DELETED_TRANSITION),
      data: Buffer.from(fd.subarray(dataStart, end)),
    });
    off = align4(end);
  }
  return out;
}

/** The current value of a variable in a store, if it has one. */
export function storedVariable(variables: StoredVariable[], name: string, vendorGuid: string): Buffer | undefined {
  return variables.find((v) => v.live && v.name === name && v.vendorGuid === vendorGuid)?.data;
}
