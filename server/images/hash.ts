import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Artefact } from '../model/image.js';

/** sha256 and size of a file, read as a stream (images are gigabytes); `onBytes` gets each chunk's length. */
export async function hashFile(file: string, onBytes: (n: number) => void = () => {}): Promise<Artefact> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    size += buf.length;
    onBytes(buf.length);
  }
  return { file: path.basename(file), sha256: hash.digest('hex'), size };
}
