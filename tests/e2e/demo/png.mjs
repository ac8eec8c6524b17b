// A tiny PNG encoder for test fixtures (RGB, no dependencies).
import { deflateSync } from 'node:zlib';

const table = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A w×h PNG; `pixel(x, y)` returns [r, g, b]. */
export function png(w, h, pixel) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const [r, g, b] = pixel(x, y);
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = r; raw[o + 1] = g; raw[o + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** A friendly picture: a violet-to-teal gradient with a sun and hills. */
export function samplePicture(w = 240, h = 150) {
  return png(w, h, (x, y) => {
    const t = y / h;
    let c = [Math.round(124 + (56 - 124) * t), Math.round(108 + (189 - 108) * t), Math.round(255 + (248 - 255) * t)];
    const dx = x - w * 0.7;
    const dy = y - h * 0.35;
    if (dx * dx + dy * dy < (h * 0.16) ** 2) c = [255, 214, 102];
    const hill = h * 0.72 + Math.sin(x / 22) * 10;
    if (y > hill) c = [22, 163, 74];
    if (y > h * 0.86 + Math.sin(x / 15 + 1) * 5) c = [21, 128, 61];
    return c;
  });
}
