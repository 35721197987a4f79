/**
 * Default `.splash` image. Talos embeds its own BMP logo, which is not available here, so this is a small
 * deterministic BMP drawn from code: an orange ring on a dark square (64x64, 24 bits per pixel, uncompressed,
 * bottom-up rows), a format systemd-stub's BMP parser accepts.
 */

const SIZE = 64;
const BACKGROUND = [0x17, 0x11, 0x0e] as const; // B, G, R
const FOREGROUND = [0x00, 0x73, 0xff] as const; // #ff7300

/** Build a 24-bit BMP from a pixel function returning [b, g, r]. */
export function encodeBmp24(width: number, height: number, pixel: (x: number, y: number) => readonly [number, number, number]): Buffer {
  const rowBytes = Math.ceil((width * 3) / 4) * 4;
  const imageSize = rowBytes * height;
  const fileSize = 14 + 40 + imageSize;
  const buf = Buffer.alloc(fileSize, 0);
  // BITMAPFILEHEADER
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(fileSize, 2);
  buf.writeUInt32LE(14 + 40, 10);
  // BITMAPINFOHEADER
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(height, 22); // positive: bottom-up
  buf.writeUInt16LE(1, 26); // planes
  buf.writeUInt16LE(24, 28); // bits per pixel
  buf.writeUInt32LE(0, 30); // BI_RGB
  buf.writeUInt32LE(imageSize, 34);
  buf.writeInt32LE(2835, 38); // 72 dpi
  buf.writeInt32LE(2835, 42);
  for (let row = 0; row < height; row++) {
    const y = height - 1 - row;
    const base = 54 + row * rowBytes;
    for (let x = 0; x < width; x++) {
      const [b, g, r] = pixel(x, y);
      buf[base + 3 * x] = b;
      buf[base + 3 * x + 1] = g;
      buf[base + 3 * x + 2] = r;
    }
  }
  return buf;
}

let cached: Buffer | undefined;

/** The default splash (a fresh copy each call). */
export function defaultSplashBmp(): Buffer {
  if (!cached) {
    const c = (SIZE - 1) / 2;
    cached = encodeBmp24(SIZE, SIZE, (x, y) => {
      const d2 = (x - c) * (x - c) + (y - c) * (y - c);
      return d2 >= 18 * 18 && d2 <= 26 * 26 ? FOREGROUND : BACKGROUND;
    });
  }
  return Buffer.from(cached);
}
