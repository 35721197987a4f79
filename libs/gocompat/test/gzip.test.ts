import { gunzipSync } from 'node:zlib';
import { GO_GZIP_OS, GZIP_OS_UNIX, goGzip, gzipHeader, gzipTrailer } from '../src';

describe('gzip framing', () => {
  test("Go's header: no flags, MTIME 0, XFL from the level, OS 255", () => {
    expect(gzipHeader(9).toString('hex')).toBe('1f8b08000000000002ff');
    expect(gzipHeader(1).toString('hex')).toBe('1f8b08000000000004ff');
    expect(gzipHeader(6).toString('hex')).toBe('1f8b08000000000000ff');
    expect(gzipHeader(0).toString('hex')).toBe('1f8b08000000000000ff');
    expect(GO_GZIP_OS).toBe(255);
  });

  test('the Unix OS byte for pigz-style outputs', () => {
    expect(gzipHeader(6, GZIP_OS_UNIX).toString('hex')).toBe('1f8b0800000000000003');
  });

  test('trailer: CRC-32 and ISIZE modulo 2^32, little-endian', () => {
    expect(gzipTrailer(0x0d4a1185, 11).toString('hex')).toBe('85114a0d0b000000');
    expect(gzipTrailer(0xffffffff, 2 ** 32 + 5).toString('hex')).toBe('ffffffff05000000');
  });

  test('goGzip: Go header, zlib deflate, CRC32 and ISIZE trailer', () => {
    const data = Buffer.from('hello world');
    const gz = goGzip(data);
    expect(gz.subarray(0, 10).toString('hex')).toBe('1f8b08000000000002ff');
    expect(gz.readUInt32LE(gz.length - 8)).toBe(0x0d4a1185);
    expect(gz.readUInt32LE(gz.length - 4)).toBe(11);
    expect(gunzipSync(gz).toString()).toBe('hello world');
    expect(goGzip(data, 1)[8]).toBe(4);
    expect(goGzip(data, 6)[8]).toBe(0);
    expect(gunzipSync(goGzip(Buffer.alloc(0))).length).toBe(0);
  });
});
