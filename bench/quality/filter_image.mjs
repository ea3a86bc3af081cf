// @ts-check
// A dictionary of image filters as one grayscale PNG: a grid of tiles, one filter per tile,
// each scaled to its own largest |value| (mid-gray is 0, white positive, black negative), as
// filters are shown in the sparse coding and ICA literature. PNG is written with node:zlib;
// an image is raster data, which is why this is not a vega-lite figure.
import { deflateSync } from 'node:zlib';

/**
 * @param {import('../../dist/index.js').Matrix} filters  one square filter per row
 * @param {{ scale?: number, gap?: number, columns?: number }} [options]
 * @returns {Buffer} the PNG file
 */
export function filterGridPng(filters, options = {}) {
  const side = Math.round(Math.sqrt(filters.cols));
  if (side * side !== filters.cols) throw new RangeError(`filters of ${filters.cols} pixels are not square`);
  const scale = options.scale ?? 4;
  const gap = options.gap ?? 2;
  const columns = options.columns ?? Math.ceil(Math.sqrt(filters.rows));
  const rows = Math.ceil(filters.rows / columns);
  const tile = side * scale;
  const width = columns * (tile + gap) + gap;
  const height = rows * (tile + gap) + gap;
  const pixels = Buffer.alloc(height * (width + 1), 255); // one filter-type byte per scanline
  for (let y = 0; y < height; y++) pixels[y * (width + 1)] = 0;
  for (let f = 0; f < filters.rows; f++) {
    const values = filters.data.subarray(f * filters.cols, (f + 1) * filters.cols);
    let peak = 0;
    for (const v of values) peak = Math.max(peak, Math.abs(v));
    const left = gap + (f % columns) * (tile + gap);
    const top = gap + Math.floor(f / columns) * (tile + gap);
    for (let py = 0; py < side; py++) {
      for (let px = 0; px < side; px++) {
        const v = peak > 0 ? values[py * side + px] / peak : 0;
        const gray = Math.round(127.5 + 127.5 * v);
        for (let dy = 0; dy < scale; dy++) {
          const offset = (top + py * scale + dy) * (width + 1) + 1 + left + px * scale;
          pixels.fill(gray, offset, offset + scale);
        }
      }
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // grayscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(pixels)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** @param {Buffer} bytes */
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** @param {string} type @param {Buffer} data */
function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}
