// Where a model's bytes come from. A downloaded model lives in one ArrayBuffer; a file from
// disk is read lazily by slices, so opening a large local GGUF costs only its header.
import { DownloadError } from './errors';

export interface ByteSource {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** The Cache Storage name for models and eval text (the service worker uses the same one). */
export const MODEL_CACHE = 'quantlab-models';

export class BufferSource implements ByteSource {
  constructor(readonly name: string, private bytes: Uint8Array, readonly fromCache = false) {}
  /** The whole file (for the runtime, which parses the model itself). */
  get all(): Uint8Array {
    return this.bytes;
  }
  get size(): number {
    return this.bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.bytes.subarray(offset, Math.min(offset + length, this.bytes.byteLength));
  }
}

export class FileSource implements ByteSource {
  constructor(private file: Blob & { name?: string }) {}
  get name(): string {
    return this.file.name ?? 'file';
  }
  get size(): number {
    return this.file.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return new Uint8Array(await this.file.slice(offset, offset + length).arrayBuffer());
  }
}

/** The copy kept for offline use, if any (Cache Storage may be missing, e.g. on http:// hosts). */
async function cached(url: string): Promise<Response | undefined> {
  try {
    return typeof caches === 'undefined' ? undefined : await (await caches.open(MODEL_CACHE)).match(url);
  } catch {
    return undefined;
  }
}

/**
 * Downloads `url` into memory, reporting bytes received (total is 0 when the server gives no
 * length). A copy in the offline cache is used first.
 */
export async function download(url: string, onProgress: (loaded: number, total: number) => void): Promise<BufferSource> {
  const hit = await cached(url);
  let response: Response;
  try {
    response = hit ?? (await fetch(url));
  } catch (error) {
    throw new DownloadError(`Could not download ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) {
    throw new DownloadError(`Could not download ${url}: HTTP ${response.status} ${response.statusText}`);
  }
  const total = Number(response.headers.get('content-length') ?? 0);
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onProgress(bytes.byteLength, bytes.byteLength);
    return new BufferSource(url, bytes, hit !== undefined);
  }
  const reader = response.body.getReader();
  // Preallocate when the length is known so a 100 MB model is not copied chunk by chunk.
  let buffer = new Uint8Array(total > 0 ? total : 1 << 20);
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > buffer.byteLength) {
      const grown = new Uint8Array(Math.max(buffer.byteLength * 2, loaded + value.byteLength));
      grown.set(buffer.subarray(0, loaded));
      buffer = grown;
    }
    buffer.set(value, loaded);
    loaded += value.byteLength;
    onProgress(loaded, total);
  }
  if (total > 0 && loaded !== total) {
    throw new DownloadError(`Download of ${url} stopped at ${loaded} of ${total} bytes`);
  }
  return new BufferSource(url, buffer.subarray(0, loaded), hit !== undefined);
}
